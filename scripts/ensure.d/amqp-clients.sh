# Independent AMQP 0-9-1 clients for the AMQP API's interop suite
# (embedded-broker/amqpapi/interop_test.go), plus the specification XML the
# wire code is generated from. Sourced by scripts/test.sh.
#   amqp-specs    Debian: /usr/share/amqp/specs/0-9-1-rabbit/... (TestGeneratedMatchesSpec)
#   python3-pika  Debian's pika, run with /usr/bin/python3
#   amqp-tools    Debian's command-line clients (librabbitmq)
#   amqplib       npm, under .tools/amqplib
apt_install amqp-specs python3-pika amqp-tools
npm_install "$root/.tools/amqplib" amqplib@2.3.1
export BRIDGE_AMQPLIB_DIR="$root/.tools/amqplib"
log "AMQP clients: pika $(/usr/bin/python3 -c 'import pika; print(pika.__version__)'), amqplib $(node -p "require('$BRIDGE_AMQPLIB_DIR/node_modules/amqplib/package.json').version"), amqp-tools $(dpkg-query -W -f='${Version}' amqp-tools)"
