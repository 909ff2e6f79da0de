"""bridge's queue features beyond SQS (docs/queues.md) through boto3 1.26
(botocore 1.29, SQS query protocol), against the endpoint given as argv[1]:
priority queues, message TTL with dead-lettering, long delays, temporary
queues, and request-reply between a client and a server thread.

Run by TestBoto3QueueFeatures (extensions_interop_test.go) with Debian's
/usr/bin/python3. Exits non-zero at the first wrong answer; prints what it
checked.
"""
import sys
import threading
import time
import uuid

import boto3
import botocore

endpoint = sys.argv[1]
client = boto3.client("sqs", endpoint_url=endpoint)
print("boto3", boto3.__version__, "botocore", botocore.__version__,
      "protocol", client.meta.service_model.protocol)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    checks += 1


def attr(value, kind="String"):
    return {"DataType": kind, "StringValue": str(value)}


suffix = uuid.uuid4().hex[:8]

# A priority queue: higher first, FIFO within a priority.
jobs = client.create_queue(QueueName="jobs-" + suffix,
                           Attributes={"bridge-max-priority": "5", "bridge-priority-aging": "3600"})["QueueUrl"]
got = client.get_queue_attributes(QueueUrl=jobs, AttributeNames=["All"])["Attributes"]
check(got.get("bridge-max-priority") == "5" and got.get("bridge-priority-aging") == "3600", "priority attributes " + str(got))
for body, prio in [("low", None), ("mid-1", 3), ("top", 5), ("mid-2", 3), ("capped", 9)]:
    kwargs = {"MessageAttributes": {"bridge-priority": attr(prio, "Number")}} if prio is not None else {}
    client.send_message(QueueUrl=jobs, MessageBody=body, **kwargs)
order = []
while True:
    msgs = client.receive_message(QueueUrl=jobs, MaxNumberOfMessages=1).get("Messages", [])
    if not msgs:
        break
    order.append(msgs[0]["Body"])
    client.delete_message(QueueUrl=jobs, ReceiptHandle=msgs[0]["ReceiptHandle"])
check(order == ["top", "capped", "mid-1", "mid-2", "low"], "priority order " + str(order))
print("ok priority order", order)

# TTL: expired messages are never received and go to the DLQ with bridge-error.
dlq = client.create_queue(QueueName="expired-" + suffix)["QueueUrl"]
dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
offers = client.create_queue(QueueName="offers-" + suffix, Attributes={
    "bridge-message-ttl": "60",
    "RedrivePolicy": '{"deadLetterTargetArn":"%s","maxReceiveCount":"5"}' % dlq_arn})["QueueUrl"]
client.send_message(QueueUrl=offers, MessageBody="stale", MessageAttributes={"bridge-ttl": attr("200ms")})
client.send_message(QueueUrl=offers, MessageBody="fresh")
time.sleep(0.4)
msgs = client.receive_message(QueueUrl=offers, MaxNumberOfMessages=10).get("Messages", [])
check([m["Body"] for m in msgs] == ["fresh"], "after the TTL only fresh is received: " + str(msgs))
dead = client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=5,
                              MessageAttributeNames=["All"]).get("Messages", [])
check(len(dead) == 1 and dead[0]["Body"] == "stale" and
      dead[0]["MessageAttributes"]["bridge-error"]["StringValue"] == "expired", "dead letter " + str(dead))
print("ok ttl and dead-lettering")

# A delay past DelaySeconds' 900 seconds.
client.send_message(QueueUrl=jobs, MessageBody="tomorrow", MessageAttributes={"bridge-delay": attr("24h")})
got = client.get_queue_attributes(QueueUrl=jobs, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
check(got["ApproximateNumberOfMessagesDelayed"] == "1", "long delay " + str(got))
try:
    client.send_message(QueueUrl=jobs, MessageBody="x", MessageAttributes={"bridge-priority": attr(300, "Number")})
    check(False, "priority 300 accepted")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "InvalidParameterValue", "priority 300: " + e.response["Error"]["Code"])
print("ok long delay and validation")

# Request-reply: a server thread answers on each request's reply queue, a
# client with a temporary reply queue matches replies by correlation id.
requests = client.create_queue(QueueName="rpc-" + suffix)["QueueUrl"]
stop = threading.Event()


def serve():
    server = boto3.client("sqs", endpoint_url=endpoint)
    while not stop.is_set():
        msgs = server.receive_message(QueueUrl=requests, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      MessageAttributeNames=["bridge-reply-to", "bridge-correlation-id"]).get("Messages", [])
        for m in msgs:
            a = m["MessageAttributes"]
            server.send_message(QueueUrl=a["bridge-reply-to"]["StringValue"], MessageBody=m["Body"].upper(),
                                MessageAttributes={"bridge-correlation-id": a["bridge-correlation-id"]})
            server.delete_message(QueueUrl=requests, ReceiptHandle=m["ReceiptHandle"])


worker = threading.Thread(target=serve)
worker.start()
replies = client.create_queue(QueueName="reply-" + suffix, tags={"bridge-temporary": "2"})["QueueUrl"]
ids = {}
for i in range(20):
    cid = uuid.uuid4().hex
    ids[cid] = "call %d" % i
    client.send_message(QueueUrl=requests, MessageBody=ids[cid], MessageAttributes={
        "bridge-reply-to": attr(replies), "bridge-correlation-id": attr(cid)})
answered = {}
deadline = time.time() + 30
while len(answered) < len(ids) and time.time() < deadline:
    for m in client.receive_message(QueueUrl=replies, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    MessageAttributeNames=["All"]).get("Messages", []):
        answered[m["MessageAttributes"]["bridge-correlation-id"]["StringValue"]] = m["Body"]
        client.delete_message(QueueUrl=replies, ReceiptHandle=m["ReceiptHandle"])
stop.set()
worker.join()
check(all(answered.get(cid) == body.upper() for cid, body in ids.items()), "replies " + str(answered))
print("ok request-reply", len(answered), "calls")

# The temporary reply queue goes once idle (2 s).
deadline = time.time() + 15
gone = False
while time.time() < deadline and not gone:
    try:
        client.get_queue_url(QueueName="reply-" + suffix)
        time.sleep(0.2)
    except botocore.exceptions.ClientError as e:
        gone = e.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
check(gone, "the idle temporary queue was deleted")
print("ok temporary queue deleted when idle")
print("checks", checks)
