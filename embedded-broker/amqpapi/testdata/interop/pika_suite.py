"""Interop suite for Debian's pika (run with /usr/bin/python3).

Runs the same checks against bridge's AMQP API and the real RabbitMQ:
AMQP_URL names the server, PREFIX makes the queue names unique. Each check
prints "ok NAME"; the first failure prints "FAIL NAME: why" and exits 1.
"""
import os
import sys
import time

import pika

URL = os.environ["AMQP_URL"]
PREFIX = os.environ["PREFIX"]


def fail(name, why):
    print("FAIL %s: %s" % (name, why), flush=True)
    sys.exit(1)


def ok(name):
    print("ok " + name, flush=True)


def connect(heartbeat=None):
    params = pika.URLParameters(URL)
    if heartbeat is not None:
        params.heartbeat = heartbeat
    return pika.BlockingConnection(params)


conn = connect(heartbeat=1)
ch = conn.channel()

# Server-named queues.
r = ch.queue_declare("", exclusive=True)
if not r.method.queue.startswith("amq.gen-"):
    fail("server-named queue", r.method.queue)
ok("server-named queue")

# Publish with confirms: every publish returns only once confirmed.
work = PREFIX + "-pika-work"
ch.queue_declare(work, durable=True)
ch.confirm_delivery()
for i in range(20):
    ch.basic_publish("", work, b"m%d" % i,
                     properties=pika.BasicProperties(delivery_mode=2, content_type="text/plain", headers={"n": i}))
if ch.queue_declare(work, passive=True).method.message_count != 20:
    fail("publish with confirms", "queue does not hold the 20 confirmed messages")
ok("publish with confirms")

# Consume with acks and prefetch: no more than 5 unacknowledged at once.
cch = conn.channel()
cch.basic_qos(prefetch_count=5)
held = []
for method, props, body in cch.consume(work, inactivity_timeout=1.0):
    if method is None:
        break
    held.append((method, props, body))
if len(held) != 5:
    fail("prefetch", "%d deliveries without acks, want 5" % len(held))
if held[0][2] != b"m0" or held[0][1].headers.get("n") != 0 or held[0][1].content_type != "text/plain":
    fail("properties", repr(held[0]))
got = len(held)
for method, _, _ in held:
    cch.basic_ack(method.delivery_tag)
for method, props, body in cch.consume(work, inactivity_timeout=1.0):
    if method is None:
        break
    got += 1
    cch.basic_ack(method.delivery_tag)
if got != 20:
    fail("consume with acks", "received %d of 20" % got)
cch.cancel()
ok("consume with acks and prefetch")

# Requeue: a nacked message comes back with redelivered set and a new tag.
ch.basic_publish("", work, b"again")
first_tag = None
for method, props, body in cch.consume(work, inactivity_timeout=2.0):
    if method is None:
        fail("requeue", "no delivery")
    if first_tag is None:
        if method.redelivered:
            fail("requeue", "first delivery marked redelivered")
        first_tag = method.delivery_tag
        cch.basic_nack(method.delivery_tag, requeue=True)
        continue
    if not method.redelivered or method.delivery_tag == first_tag or body != b"again":
        fail("requeue", "second delivery %r redelivered=%s tag %d (first %d)" % (body, method.redelivered, method.delivery_tag, first_tag))
    cch.basic_ack(method.delivery_tag)
    break
cch.cancel()
ok("requeue")

# Mandatory publish that no queue takes: returned (pika raises).
try:
    ch.basic_publish("amq.direct", PREFIX + "-nowhere", b"x", mandatory=True)
    fail("mandatory return", "no basic.return")
except pika.exceptions.UnroutableError:
    pass
ok("mandatory return")

# Heartbeats: an idle connection with a 1 s heartbeat stays up.
conn.sleep(3.5)
ch.queue_declare(work, passive=True)
ok("heartbeats")

# Channel errors: 404 closes the channel only.
bad = conn.channel()
try:
    bad.queue_declare(PREFIX + "-missing", passive=True)
    fail("channel error", "passive declare of a missing queue succeeded")
except pika.exceptions.ChannelClosedByBroker as e:
    if e.reply_code != 404:
        fail("channel error", "code %d" % e.reply_code)
if not conn.is_open:
    fail("channel error", "the connection closed")
conn.channel().queue_declare(work, passive=True)
ok("channel error closes only the channel")

ch.queue_delete(work)
conn.close()
