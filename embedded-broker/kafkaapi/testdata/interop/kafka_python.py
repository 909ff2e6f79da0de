"""kafka-python side of bridge's Kafka interop suite (interop_test.go).

Usage:
  kafka_python.py produce ADDR TOPIC N CODEC PREFIX   values PREFIX-0..N-1, key k<i>, header h=<i>
  kafka_python.py consume ADDR TOPIC N                one value per line, from the beginning
  kafka_python.py group ADDR TOPIC GROUP N            consume N in GROUP, commit, leave
  kafka_python.py member ADDR TOPIC GROUP             consume in GROUP until $STOP_FILE exists
Exit status is non-zero on any failure.
"""
import sys

import kafka
from kafka import KafkaConsumer, KafkaProducer


def produce(addr, topic, n, codec, prefix):
    codec = None if codec == "none" else codec
    p = KafkaProducer(bootstrap_servers=addr, compression_type=codec, acks="all", linger_ms=5, api_version_auto_timeout_ms=10000)
    futures = [p.send(topic, key=b"k%d" % i, value=("%s-%d" % (prefix, i)).encode(), headers=[("h", b"%d" % i)]) for i in range(n)]
    for f in futures:
        f.get(timeout=30)
    p.flush()
    p.close()


def member(addr, topic, group):
    """Consume in GROUP, committing after each poll, until $STOP_FILE exists."""
    import os
    c = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=500)
    while not os.path.exists(os.environ["STOP_FILE"]):
        for _, msgs in c.poll(timeout_ms=200).items():
            for msg in msgs:
                print(msg.value.decode(), flush=True)
        c.commit()
    c.close()


def consume(addr, topic, n, group=None):
    c = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=30000, session_timeout_ms=10000,
                      heartbeat_interval_ms=1000, max_poll_records=max(1, n))
    got = 0
    for msg in c:
        print(msg.value.decode(), flush=True)
        got += 1
        if got >= n:
            break
    if group:
        c.commit()
    c.close()
    if got < n:
        sys.exit("consumed %d of %d" % (got, n))


def main():
    print("kafka-python " + kafka.__version__, file=sys.stderr)
    cmd, addr, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "produce":
        produce(addr, topic, int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif cmd == "consume":
        consume(addr, topic, int(sys.argv[4]))
    elif cmd == "group":
        consume(addr, topic, int(sys.argv[5]), group=sys.argv[4])
    elif cmd == "member":
        member(addr, topic, sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


main()
