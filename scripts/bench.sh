#!/usr/bin/env bash
# Runs every benchmark whose figure is in the README's performance table, in
# one go, on this machine. Peers (NATS JetStream embedded, fauxqs, kfake,
# RabbitMQ) run in the same process or on loopback, so each ratio compares
# like with like. Usage: ./scripts/bench.sh [-count N]   (default 1; use 6 + benchstat for the table)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1}
export FAUXQS_DIR="${FAUXQS_DIR:-$(pwd)/.tools/fauxqs}"
run() { echo "## $*" >&2; go test -run '^$' -count "$count" "$@" | grep -E '^(Benchmark|ok|FAIL)' ; }

run -bench 'BenchmarkAppend|BenchmarkReadSequential' -benchtime 2s ./embedded-broker/commitlog/
(cd bench && go test -run '^$' -count "$count" -bench 'BenchmarkBatch100|BenchmarkConcurrent64SyncAlways' -benchtime 2s . | grep -E '^(Benchmark|ok|FAIL)')
# Kafka-protocol listener: franz-go produce to bridge / kfake / JetStream, consume by sendfile / TLS / kfake (docs/kafka-api.md).
# BenchmarkKafkaAPIRdkafkaProduce100B needs KAFKA_INTEROP_RDKAFKA_PERFORMANCE (source scripts/ensure.d/kafka-clients.sh after test.sh's helpers).
(cd bench && go test -run '^$' -count "$count" -bench 'BenchmarkKafkaAPI' -benchtime 3x . | grep -E '^(Benchmark|ok|FAIL)')
# Transforms beside Benthos's mapping processor (issue 12): the step alone,
# then whole pipelines (300,000 events per iteration).
(cd bench && go test -run '^$' -count "$count" -bench 'TransformProcessor' -benchtime 2s . | grep -E '^(Benchmark|ok|FAIL)')
(cd bench && go test -run '^$' -count "$count" -bench 'TransformPipeline$' -benchtime 3x . | grep -E '^(Benchmark|ok|FAIL)')
# The same, each side in a process of its own, alternated (the figure docs/transforms.md quotes).
(cd bench && go test -run '^$' -count "$count" -bench 'TransformPipelineSeparate' -benchtime 3x . | grep -E '^(Benchmark|ok|FAIL)')
run -bench 'BenchmarkHTTPIngest' -benchtime 5000x ./engine/httpapi/
run -bench 'BenchmarkFilter|BenchmarkExtract|BenchmarkTransform' -benchtime 2s ./rules/
run -bench 'BenchmarkPipeline|BenchmarkTelemetryOverhead' -benchtime 3x ./engine/
run -bench 'BenchmarkReloadUnderLoad' -benchtime 5x ./engine/
run -bench 'BenchmarkTopicRoute' -benchtime 2s ./embedded-broker/exchange/
run -bench 'BenchmarkSendReceiveDelete|BenchmarkSend100|BenchmarkLongPollLatency' -benchtime 2s ./embedded-broker/queue/
# Queue features beyond SQS (docs/queues.md): a priority queue against a plain one, paired in one run
# (priority-% >= 70 is the target), and receive from a 1,000,000-message backlog with and without a
# message TTL (ttl-% ~ 100: expiry costs nothing while nothing expires). The backlog benchmark
# consumes 10 messages per queue per iteration: keep its -benchtime at or below 100000x.
run -bench 'BenchmarkPriorityVsPlain' -benchtime 2s ./embedded-broker/queue/
run -bench 'BenchmarkReceiveBacklog1M' -benchtime 50000x ./embedded-broker/queue/
run -bench 'BenchmarkSQSAPISendReceiveDelete|BenchmarkSDKClientCeiling|BenchmarkFauxqsSendReceiveDelete|BenchmarkServerRawHTTP|BenchmarkFauxqsRawHTTP|BenchmarkSQSAPILongPollLatency' -benchtime 10x ./embedded-broker/sqsapi/
run -bench 'BenchmarkHandlerSendReceiveDelete' -benchtime 2s ./embedded-broker/sqsapi/
# The query protocol against JSON 1.0, same loop, same client, same run (docs/sqs-api.md).
run -bench 'BenchmarkProtocol' -benchtime 10x ./embedded-broker/sqsapi/
# The SQS server's own CPU per message, bridge vs fauxqs, an SDK loop in another process.
./scripts/sqs-server-cpu.sh 30000 3
# Kafka pairs alternate bridge and bare per iteration: 20 iterations settle the ratio.
run -bench 'BenchmarkProducePaired|BenchmarkKafkaToKafka' -benchtime 20x ./connectors/kafka/
for pkg in ./connectors/amqp/ ./connectors/sqs/; do
	run -bench '.' -benchtime 1x "$pkg"
done
# Migrations with and without --verify (BRIDGE_MIGRATE_BENCH_N=1000000 for the README's figure).
run -bench 'BenchmarkMigrate' -benchtime 1x -timeout 60m ./migrate/
# AMQP API (issue 19) against the local RabbitMQ (classic and quorum), same amqp091-go client code.
run -bench 'BenchmarkAMQP' -benchtime 3x ./embedded-broker/amqpapi/
# Web console (issue 16): overview render, sampler tick, search and publish over 5,000 topics and 5,000 queues,
# then the CPU an open tab costs bridge while 100k events/s are ingested (docs/console.md).
run -bench 'BenchmarkConsole5k' -benchtime 20x ./console/
run -bench 'BenchmarkTailStep' -benchtime 200x ./console/
run -bench 'BenchmarkHubFanout' -benchtime 200x ./console/sse/
run -bench '.' -benchtime 2s ./console/history/ ./console/journey/
go build -o /tmp/bridge-consolesse ./cmd/bridge
(cd bench && go run ./cmd/consolesse -bin /tmp/bridge-consolesse -rate 100000 -tabs 100 -phase 20s -rounds 3)
