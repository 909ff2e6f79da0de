#!/usr/bin/env bash
# The whole test suite of bridge, on a fresh machine or a used one.
#
# It installs and starts what the tests need when it is missing (RabbitMQ from
# Debian's packages, fauxqs from npm), then checks formatting and vet, runs the
# suite with the race detector on the packages with concurrency, and gives each
# fuzz target a short smoke run. Usage: ./scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '== %s\n' "$*" >&2; }

ensure_rabbitmq() {
	if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
		log "RabbitMQ: listening on 127.0.0.1:5672"
		return
	fi
	if ! command -v rabbitmq-server >/dev/null 2>&1; then
		log "RabbitMQ: installing rabbitmq-server from Debian's packages"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq rabbitmq-server >/dev/null
	fi
	log "RabbitMQ: starting"
	rabbitmq-server -detached || true
	for _ in $(seq 90); do
		rabbitmqctl await_startup --timeout 30 >/dev/null 2>&1 && break
		sleep 1
	done
	rabbitmqctl await_startup --timeout 30 >/dev/null
}

ensure_fauxqs() {
	export FAUXQS_DIR="$root/.tools/fauxqs"
	if [ -f "$FAUXQS_DIR/node_modules/fauxqs/package.json" ]; then
		log "fauxqs: installed in $FAUXQS_DIR"
		return
	fi
	if ! command -v npm >/dev/null 2>&1; then
		log "fauxqs: installing Node.js and npm from Debian's packages"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq nodejs npm >/dev/null
	fi
	log "fauxqs: installing fauxqs@1.9.2 with npm"
	mkdir -p "$FAUXQS_DIR"
	npm install --silent --no-audit --no-fund --prefix "$FAUXQS_DIR" fauxqs@1.9.2 >/dev/null
}

# apt_install PKG...: installs the Debian packages that are missing, with one
# apt-get update per run. Used by the scripts in scripts/ensure.d.
apt_updated=
apt_install() {
	local missing=()
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$apt_updated" ]; then
		apt-get update -qq
		apt_updated=1
	fi
	log "installing ${missing[*]} from Debian's packages"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# npm_install DIR PKG@VERSION...: installs npm packages into DIR (once).
npm_install() {
	local dir=$1
	shift
	local stamp="$dir/.installed-$(echo "$*" | sed 's/[ /@]/_/g')"
	[ -f "$stamp" ] && return 0
	mkdir -p "$dir"
	log "npm: installing $* into $dir"
	npm install --silent --no-audit --no-fund --prefix "$dir" "$@" >/dev/null
	touch "$stamp"
}

ensure_rabbitmq
ensure_fauxqs
# Independent clients of bridge's listeners (one script per suite; each
# installs what it needs with apt_install / npm_install and exports the paths
# its tests read).
for setup in "$root"/scripts/ensure.d/*.sh; do
	[ -e "$setup" ] || continue
	# shellcheck source=/dev/null
	source "$setup"
done

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

log "go vet"
go vet ./...

log "go test (race detector on)"
# -parallel 4: the e2e chaos and soak tests spend most of their time waiting
# for faults to act; four at a time use the cores the others leave idle.
# -race on everything: every package of bridge has goroutines somewhere.
go test -race -count=1 -timeout 25m -parallel 4 "$@" ./...

log "fuzz smoke runs"
fuzztime=${FUZZTIME:-5s}
# Start from the seed corpora (testdata/fuzz and f.Add), as on a fresh
# machine: a cache grown by long local fuzzing sessions makes the baseline
# coverage pass outlast a 5 s run.
go clean -fuzzcache

# fuzz_one PKG TARGET: one smoke run with one fuzz worker. Go's fuzz
# coordinator can run out its -fuzztime while a worker is still starting on a
# loaded machine and report only "context deadline exceeded", with no failing
# input. That is not a finding: run once more, longer. A real failure writes
# its input and fails.
fuzz_one() {
	local pkg=$1 target=$2 out t
	for attempt in 1 2; do
		t=$fuzztime
		if [ "$attempt" = 2 ]; then t=30s; fi
		if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -parallel 1 "$pkg" 2>&1); then
			log "fuzz $pkg $target ($t): ok"
			return 0
		fi
		if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
			log "fuzz $target: the fuzzer timed out starting, not a failing input; once more"
			continue
		fi
		echo "$out" | grep -v '^fuzz: elapsed' >&2
		log "fuzz $pkg $target: FAILED"
		return 1
	done
}

targets=()
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		targets+=("$pkg $target")
	done
done
# Two streams of one worker each keep both cores busy through the start-up
# and link time of every run (about half the wall time of one stream).
fuzz_stream() {
	local i
	for ((i = $1; i < ${#targets[@]}; i += 2)); do
		# shellcheck disable=SC2086
		fuzz_one ${targets[$i]} || return 1
	done
}
fuzz_stream 0 &
stream0=$!
fuzz_stream 1 &
stream1=$!
fuzz_failed=
wait "$stream0" || fuzz_failed=1
wait "$stream1" || fuzz_failed=1
if [ -n "$fuzz_failed" ]; then
	exit 1
fi
log "all tests passed"
