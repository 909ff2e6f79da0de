#!/bin/sh
# Interop suite for Debian's amqp-tools (librabbitmq's command-line clients).
# Runs the same checks against bridge's AMQP API and the real RabbitMQ:
# AMQP_URL names the server (no trailing slash: librabbitmq reads "/" as the
# empty vhost), PREFIX makes queue names unique. Each check prints "ok NAME";
# the first failure prints "FAIL NAME: why" and exits 1.
set -u
U="$AMQP_URL"
Q="$PREFIX-tools-work"
fail() { echo "FAIL $1: $2"; amqp-delete-queue -u "$U" -q "$Q" >/dev/null 2>&1; exit 1; }

name=$(amqp-declare-queue -u "$U" -q "") || fail "server-named queue" "declare failed"
case "$name" in amq.gen-*) ;; *) fail "server-named queue" "$name" ;; esac
amqp-delete-queue -u "$U" -q "$name" >/dev/null || fail "server-named queue" "delete failed"
echo "ok server-named queue"

[ "$(amqp-declare-queue -u "$U" -d -q "$Q")" = "$Q" ] || fail "declare" "durable declare"
for i in 1 2 3 4; do
	amqp-publish -u "$U" -r "$Q" -p -C text/plain -H "n: $i" -b "msg-$i" || fail "publish" "message $i"
done
echo "ok publish"

[ "$(amqp-get -u "$U" -q "$Q")" = "msg-1" ] || fail "get" "first message"
echo "ok get"

out=$(amqp-consume -u "$U" -q "$Q" -c 3 -p 1 cat) || fail "consume" "exit status"
[ "$out" = "msg-2msg-3msg-4" ] || fail "consume with prefetch 1" "got '$out'"
echo "ok consume with acks and prefetch"

amqp-get -u "$U" -q "$Q" >/dev/null 2>&1
[ $? -eq 2 ] || fail "get on empty" "want exit status 2 (no message)"
echo "ok get on an empty queue"

# Heartbeats: a consumer with a 1 s heartbeat idles 3 s, then gets a message.
tmp=$(mktemp)
amqp-consume -u "$U" --heartbeat=1 -q "$Q" -c 1 cat >"$tmp" 2>&1 &
pid=$!
sleep 3
amqp-publish -u "$U" -r "$Q" -b "late" || fail "heartbeats" "publish"
wait $pid || fail "heartbeats" "consumer failed: $(cat "$tmp")"
[ "$(cat "$tmp")" = "late" ] || fail "heartbeats" "got '$(cat "$tmp")'"
rm -f "$tmp"
echo "ok heartbeats"

err=$(amqp-get -u "$U" -q "$PREFIX-missing" 2>&1) && fail "channel error" "get from a missing queue succeeded"
case "$err" in *404*) ;; *) fail "channel error" "$err" ;; esac
echo "ok channel error 404"

[ "$(amqp-delete-queue -u "$U" -q "$Q")" = "0" ] || fail "delete" "message count"
echo "ok delete"
