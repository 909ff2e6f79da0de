# Independent Kafka clients for the Kafka-protocol listener's interop suite
# (embedded-broker/kafkaapi/interop_test.go). Sourced by scripts/test.sh,
# which defines apt_install and npm_install.
#
# - kcat (librdkafka), Debian's package.
# - rdkafka_performance: librdkafka's benchmark client. No Debian package
#   ships it built; librdkafka-dev ships its source in examples/, which we
#   compile against the packaged library with a small shim for the two
#   librdkafka-internal headers it includes (testdata/interop/rd_shim.h).
# - kafka-python (Debian's python3-kafka) with its codec modules, run by
#   Debian's /usr/bin/python3.
# - kafkajs from npm, with pure-JS codecs (kafkajs-snappy, lz4js, zstd-codec;
#   native codec packages cannot build here).
apt_install kcat librdkafka-dev gcc libc6-dev python3-kafka python3-snappy python3-lz4 python3-zstandard

kafka_tools="$root/.tools/kafka-clients"
mkdir -p "$kafka_tools"
rdp_src=/usr/share/doc/librdkafka-dev/examples/rdkafka_performance.c
if [ ! -x "$kafka_tools/rdkafka_performance" ] || [ "$rdp_src" -nt "$kafka_tools/rdkafka_performance" ]; then
	log "building rdkafka_performance from librdkafka-dev's example source"
	mkdir -p "$kafka_tools/rdp/examples" "$kafka_tools/rdp/src"
	cp "$rdp_src" "$kafka_tools/rdp/examples/"
	cp "$root/embedded-broker/kafkaapi/testdata/interop/rd_shim.h" "$kafka_tools/rdp/src/rd.h"
	: >"$kafka_tools/rdp/examples/rd.h"
	: >"$kafka_tools/rdp/examples/rdtime.h"
	cc -O2 -I/usr/include/librdkafka -include "$kafka_tools/rdp/src/rd.h" -o "$kafka_tools/rdkafka_performance" \
		"$kafka_tools/rdp/examples/rdkafka_performance.c" -lrdkafka
fi
npm_install "$kafka_tools/node" kafkajs@2.2.4 kafkajs-snappy@1.1.0 lz4js@0.2.0 zstd-codec@0.1.5

export KAFKA_INTEROP_KCAT=/usr/bin/kcat
export KAFKA_INTEROP_RDKAFKA_PERFORMANCE="$kafka_tools/rdkafka_performance"
export KAFKA_INTEROP_PYTHON=/usr/bin/python3
export KAFKA_INTEROP_NODE="$(command -v node)"
export KAFKA_INTEROP_NODE_PATH="$kafka_tools/node/node_modules"
