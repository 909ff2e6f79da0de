#!/usr/bin/env bash
# The SQS server's own CPU cost per message, the figure workers on other
# machines feel: bridge (the built binary) and fauxqs serve the same AWS SDK
# send -> receive -> delete loop (bench/cmd/sqsload: batches of 10, 200-byte
# bodies, 4 producers + 4 consumers) running in another process; each
# server's CPU time (utime + stime from /proc/PID/stat) is read before and
# after, and printed as microseconds of server CPU per message.
#
# Usage: ./scripts/sqs-server-cpu.sh [MESSAGES] [ROUNDS]   (defaults 30000, 3)
# bridge runs once per fsync policy (always, interval); with
# SQS_CPU_PROFILE=DIR it also saves a 10 s CPU profile of each bridge run
# (bridge runs with --pprof). BRIDGE_BIN=PATH measures that bridge binary.
# BASE_BIN=PATH also measures that (older) bridge binary in the same rounds,
# for a before/after in one run. SQS_FSYNC="interval" picks the policies
# (default "always interval"). SQS_CANNED=1 also measures the floor: the
# same loop against bench/cmd/sqscanned, a server with canned answers and
# no queue, once on internal/leanhttp (bridge's SQS listener) and once on
# net/http: what HTTP alone costs per message on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
messages=${1:-30000}
rounds=${2:-3}
work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# BRIDGE_BIN=path measures another build (e.g. an older commit's) instead.
if [ -n "${BRIDGE_BIN:-}" ]; then
	cp "$BRIDGE_BIN" "$work/bridge"
else
	go build -o "$work/bridge" ./cmd/bridge
fi
if [ -n "${BASE_BIN:-}" ]; then
	cp "$BASE_BIN" "$work/bridge-base"
fi
(cd bench && go build -o "$work/sqsload" ./cmd/sqsload && go build -o "$work/sqscanned" ./cmd/sqscanned)
clk=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of the process (fields 14 and 15; the command
# name in field 2 may hold spaces, so count from after its closing paren).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {
	for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
	echo "no answer from $1" >&2
	return 1
}

# measure NAME PID ENDPOINT: runs the loop and prints NAME's CPU per message.
measure() {
	local name=$1 pid=$2 endpoint=$3
	local before after out
	before=$(cpu_ticks "$pid")
	out=$("$work/sqsload" -endpoint "$endpoint" -messages "$messages")
	after=$(cpu_ticks "$pid")
	awk -v n="$name" -v b="$before" -v a="$after" -v clk="$clk" -v m="$messages" -v out="$out" \
		'BEGIN { cpu = (a - b) / clk; printf "%-24s %8.2f s CPU  %6.1f µs/msg   (%s)\n", n, cpu, cpu * 1e6 / m, out }'
}

# start_bridge FSYNC [BINARY NAME]: sets bridge_pid, bridge_endpoint, bridge_pprof.
start_bridge() {
	local fsync=$1 bin=${2:-bridge} port pprof
	port=$(free_port)
	pprof=$(free_port)
	mkdir -p "$work/data-$bin-$fsync"
	cat >"$work/$bin-$fsync.yaml" <<YAML
data_dir: $work/data-$bin-$fsync
http: { listen: 127.0.0.1:0 }
sqs_api: { listen: 127.0.0.1:$port }
backbone: { fsync: $fsync }
YAML
	"$work/$bin" run -c "$work/$bin-$fsync.yaml" --pprof "127.0.0.1:$pprof" 2>"$work/$bin-$fsync.log" &
	bridge_pid=$!
	pids+=("$bridge_pid")
	bridge_endpoint="http://127.0.0.1:$port"
	bridge_pprof="http://127.0.0.1:$pprof"
	wait_http "$bridge_endpoint/"
}

fauxqs_dir=${FAUXQS_DIR:-$root/.tools/fauxqs}
fport=$(free_port)
(cd "$fauxqs_dir" && exec node --input-type=module -e "import {startFauxqs} from 'fauxqs'; await startFauxqs({port: $fport, logger: false})") &
fauxqs_pid=$!
pids+=("$fauxqs_pid")
wait_http "http://127.0.0.1:$fport/health"

# start_canned SERVER: sets canned_pid and canned_endpoint.
start_canned() {
	"$work/sqscanned" -server "$1" >"$work/canned.addr" &
	canned_pid=$!
	pids+=("$canned_pid")
	for _ in $(seq 100); do [ -s "$work/canned.addr" ] && break; sleep 0.1; done
	canned_endpoint="http://$(cat "$work/canned.addr")"
	: >"$work/canned.addr"
}

if [ -n "${SQS_CANNED:-}" ]; then
	start_canned lean
	lean_pid=$canned_pid lean_endpoint=$canned_endpoint
	start_canned net/http
	for round in $(seq "$rounds"); do
		measure "canned, leanhttp" "$lean_pid" "$lean_endpoint"
		measure "canned, net/http" "$canned_pid" "$canned_endpoint"
	done
fi

for fsync in ${SQS_FSYNC:-always interval}; do
	if [ -n "${BASE_BIN:-}" ]; then
		start_bridge "$fsync" bridge-base
		base_pid=$bridge_pid base_endpoint=$bridge_endpoint
	fi
	start_bridge "$fsync"
	for round in $(seq "$rounds"); do
		if [ -n "${SQS_CPU_PROFILE:-}" ] && [ "$round" = 1 ]; then
			mkdir -p "$SQS_CPU_PROFILE"
			curl -s -o "$SQS_CPU_PROFILE/bridge-fsync-$fsync.pprof" "$bridge_pprof/debug/pprof/profile?seconds=10" &
			profiler=$!
		fi
		measure "bridge fsync=$fsync" "$bridge_pid" "$bridge_endpoint"
		measure "fauxqs (in memory)" "$fauxqs_pid" "http://127.0.0.1:$fport"
		if [ -n "${BASE_BIN:-}" ]; then
			measure "base bridge fsync=$fsync" "$base_pid" "$base_endpoint"
		fi
		if [ -n "${profiler:-}" ]; then wait "$profiler"; profiler=; fi
	done
	kill "$bridge_pid" ${base_pid:-}
	wait "$bridge_pid" ${base_pid:-} 2>/dev/null || true
	base_pid=
done
