"""Every SQS action that boto3 1.26 (botocore 1.29, SQS query protocol) has,
against the endpoint given as argv[1]. Credentials and region come from the
environment. Exits non-zero at the first wrong answer; prints what it checked.

Run by TestBoto3Interop (interop_test.go) with Debian's /usr/bin/python3.
"""
import hashlib
import struct
import sys
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


def expect_error(fn, exc, code, what):
    try:
        fn()
    except exc as e:
        check(e.response["Error"]["Code"] == code, what + ": code " + e.response["Error"]["Code"])
        return
    check(False, what + ": no error")


def md5_of_attributes(attrs):
    # As the SQS developer guide specifies MD5OfMessageAttributes.
    buf = b""
    for name in sorted(attrs):
        v = attrs[name]
        enc = lambda b: struct.pack(">I", len(b)) + b
        buf += enc(name.encode()) + enc(v["DataType"].encode())
        if "BinaryValue" in v:
            buf += b"\x02" + enc(v["BinaryValue"])
        else:
            buf += b"\x01" + enc(v["StringValue"].encode())
    return hashlib.md5(buf).hexdigest()


suffix = uuid.uuid4().hex[:8]
name = "boto3-" + suffix

# Queues and their attributes.
url = client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "20", "DelaySeconds": "0"},
                          tags={"team": "orders"})["QueueUrl"]
check(url.endswith("/000000000000/" + name), "create_queue url " + url)
check(client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "20"})["QueueUrl"] == url,
      "create_queue is idempotent with the same attributes")
expect_error(lambda: client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "21"}),
             client.exceptions.QueueNameExists, "QueueAlreadyExists", "create_queue with other attributes")
check(client.get_queue_url(QueueName=name)["QueueUrl"] == url, "get_queue_url")
check(url in client.list_queues(QueueNamePrefix="boto3-" + suffix)["QueueUrls"], "list_queues with prefix")
check("QueueUrls" not in client.list_queues(QueueNamePrefix="none-such-" + suffix), "list_queues without match")
client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45", "ReceiveMessageWaitTimeSeconds": "1"})
attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check(attrs["VisibilityTimeout"] == "45" and attrs["ReceiveMessageWaitTimeSeconds"] == "1", "set/get attributes %r" % attrs)
check(attrs["QueueArn"].endswith(":000000000000:" + name), "QueueArn")
only = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "DelaySeconds"])["Attributes"]
check(sorted(only) == ["DelaySeconds", "QueueArn"], "get selected attributes %r" % only)
expect_error(lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"]),
             botocore.exceptions.ClientError, "InvalidAttributeName", "unknown attribute name")

# One message with every attribute type; body with CR, markup and non-ASCII.
body = "line 1\r\nline 2 <order id=\"7\"> & caf\u00e9 \U0001F600"
mattrs = {"bridge-key": {"DataType": "String", "StringValue": "o-1"},
          "amount": {"DataType": "Number", "StringValue": "120.5"},
          "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe"},
          "note": {"DataType": "String.custom", "StringValue": "a\tb"}}
sent = client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=mattrs)
check(sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest(), "MD5OfMessageBody")
check(sent["MD5OfMessageAttributes"] == md5_of_attributes(mattrs), "MD5OfMessageAttributes")
got = client.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"],
                             MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
check(len(got) == 1 and got[0]["Body"] == body, "receive body round trip %r" % got)
m = got[0]
check(m["MessageId"] == sent["MessageId"], "message id")
check(m["MessageAttributes"]["raw"]["BinaryValue"] == b"\x00\x01\xfe", "binary attribute")
check(m["MessageAttributes"]["amount"] == {"DataType": "Number", "StringValue": "120.5"}, "number attribute")
check(m["MessageAttributes"]["note"]["StringValue"] == "a\tb", "custom string attribute")
check(m["MD5OfMessageAttributes"] == md5_of_attributes(mattrs), "received MD5OfMessageAttributes")
check(m["Attributes"]["ApproximateReceiveCount"] == "1" and m["Attributes"]["SenderId"] == "000000000000",
      "system attributes %r" % m["Attributes"])
sel = client.receive_message(QueueUrl=url, MessageAttributeNames=["bridge-*", "amount"], VisibilityTimeout=0)
check(sel.get("Messages") is None, "an in-flight message is not received again")
client.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
again = client.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"],
                               MessageAttributeNames=["amount"], WaitTimeSeconds=1)["Messages"][0]
check(again["Attributes"] == {"ApproximateReceiveCount": "2"}, "receive count after visibility 0")
check(list(again["MessageAttributes"]) == ["amount"], "selected message attributes")
client.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
expect_error(lambda: client.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle"),
             client.exceptions.ReceiptHandleIsInvalid, "ReceiptHandleIsInvalid", "delete with a bad handle")
expect_error(lambda: client.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=5),
             botocore.exceptions.ClientError, "AWS.SimpleQueueService.MessageNotInflight", "change visibility of a deleted message")

# Batches with partial failures.
entries = [{"Id": "ok%d" % i, "MessageBody": "batch %d" % i} for i in range(8)]
entries.append({"Id": "badtype", "MessageBody": "x", "MessageAttributes": {"k": {"DataType": "Bogus", "StringValue": "v"}}})
entries.append({"Id": "badchar", "MessageBody": "nul \x00 here"})
res = client.send_message_batch(QueueUrl=url, Entries=entries)
check(sorted(e["Id"] for e in res["Successful"]) == sorted("ok%d" % i for i in range(8)), "batch successes %r" % res)
failed = {e["Id"]: e for e in res["Failed"]}
check(failed["badtype"]["Code"] == "InvalidParameterValue" and failed["badtype"]["SenderFault"] is True, "batch failure %r" % failed)
check(failed["badchar"]["Code"] == "InvalidMessageContents", "batch failure code %r" % failed)
for e in res["Successful"]:
    check(e["MD5OfMessageBody"] == hashlib.md5(("batch " + e["Id"][2:]).encode()).hexdigest(), "batch MD5")
expect_error(lambda: client.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]),
             client.exceptions.BatchEntryIdsNotDistinct, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "repeated batch ids")
expect_error(lambda: client.send_message_batch(QueueUrl=url, Entries=[{"Id": "m%d" % i, "MessageBody": "x"} for i in range(11)]),
             client.exceptions.TooManyEntriesInBatchRequest, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "11 entries")
received = []
while len(received) < 8:
    batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    check(batch, "batch messages arrive")
    received += batch
check(sorted(m["Body"] for m in received) == sorted("batch %d" % i for i in range(8)), "batch bodies")
cv = client.change_message_visibility_batch(QueueUrl=url, Entries=[
    {"Id": "c0", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 60},
    {"Id": "cbad", "ReceiptHandle": "garbage", "VisibilityTimeout": 60}])
check([e["Id"] for e in cv["Successful"]] == ["c0"] and cv["Failed"][0]["Id"] == "cbad"
      and cv["Failed"][0]["Code"] == "ReceiptHandleIsInvalid", "change visibility batch %r" % cv)
dels = [{"Id": "d%d" % i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
dels.append({"Id": "dbad", "ReceiptHandle": "garbage"})
dr = client.delete_message_batch(QueueUrl=url, Entries=dels)
check(len(dr["Successful"]) == 8 and [f["Id"] for f in dr["Failed"]] == ["dbad"], "delete batch %r" % dr)
expect_error(lambda: client.delete_message_batch(QueueUrl=url, Entries=[]),
             client.exceptions.EmptyBatchRequest, "AWS.SimpleQueueService.EmptyBatchRequest", "empty batch")

# FIFO: order per group, content-based deduplication, sequence numbers.
fifo = client.create_queue(QueueName="boto3-" + suffix + ".fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
seqs = []
for i in range(3):
    seqs.append(client.send_message(QueueUrl=fifo, MessageBody="g1-%d" % i, MessageGroupId="g1")["SequenceNumber"])
dup = client.send_message(QueueUrl=fifo, MessageBody="g1-0", MessageGroupId="g1")
check("SequenceNumber" in dup, "a duplicate send still succeeds")
fb = client.send_message_batch(QueueUrl=fifo, Entries=[
    {"Id": "a", "MessageBody": "g2-0", "MessageGroupId": "g2", "MessageDeduplicationId": "x"},
    {"Id": "b", "MessageBody": "g2-1", "MessageGroupId": "g2", "MessageDeduplicationId": "y"},
    {"Id": "c", "MessageBody": "no group"}])
check(len(fb["Successful"]) == 2 and fb["Failed"][0]["Id"] == "c" and fb["Failed"][0]["Code"] == "MissingParameter",
      "FIFO batch without a group %r" % fb)
check(seqs == sorted(seqs, key=int), "sequence numbers increase")
bodies = []
for _ in range(10):
    msgs = client.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId", "SequenceNumber"]).get("Messages", [])
    for m in msgs:
        bodies.append((m["Attributes"]["MessageGroupId"], m["Body"]))
        client.delete_message(QueueUrl=fifo, ReceiptHandle=m["ReceiptHandle"])
    if len(bodies) >= 5:
        break
check([b for g, b in bodies if g == "g1"] == ["g1-0", "g1-1", "g1-2"], "FIFO order, duplicate dropped %r" % bodies)
check([b for g, b in bodies if g == "g2"] == ["g2-0", "g2-1"], "FIFO order in group g2 %r" % bodies)

# Dead-letter queue.
dlq = client.create_queue(QueueName="boto3-dlq-" + suffix)["QueueUrl"]
dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
src = client.create_queue(QueueName="boto3-src-" + suffix, Attributes={
    "RedrivePolicy": '{"deadLetterTargetArn":"%s","maxReceiveCount":"1"}' % dlq_arn})["QueueUrl"]
check(client.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src], "list_dead_letter_source_queues")
client.send_message(QueueUrl=src, MessageBody="poison")
client.receive_message(QueueUrl=src, VisibilityTimeout=0, WaitTimeSeconds=1)
check("Messages" not in client.receive_message(QueueUrl=src, WaitTimeSeconds=1), "moved after maxReceiveCount")
dead = client.receive_message(QueueUrl=dlq, AttributeNames=["DeadLetterQueueSourceArn"], WaitTimeSeconds=1)["Messages"]
check(dead[0]["Body"] == "poison" and dead[0]["Attributes"]["DeadLetterQueueSourceArn"].endswith(":boto3-src-" + suffix), "dead letter %r" % dead)

# Delay, purge, delete.
client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
delayed = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
check(delayed["ApproximateNumberOfMessagesDelayed"] == "1", "delayed message %r" % delayed)
client.purge_queue(QueueUrl=url)
check(client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "0", "purge")
big = "x" * 262144
check(client.send_message(QueueUrl=url, MessageBody=big)["MD5OfMessageBody"] == hashlib.md5(big.encode()).hexdigest(), "256 KiB body")
expect_error(lambda: client.send_message(QueueUrl=url, MessageBody=big + "y"),
             botocore.exceptions.ClientError, "InvalidParameterValue", "body over MaximumMessageSize")
for q in (url, fifo, dlq, src):
    client.delete_queue(QueueUrl=q)
expect_error(lambda: client.get_queue_url(QueueName=name),
             client.exceptions.QueueDoesNotExist, "AWS.SimpleQueueService.NonExistentQueue", "get_queue_url of a deleted queue")
expect_error(lambda: client.send_message(QueueUrl=url, MessageBody="x"),
             client.exceptions.QueueDoesNotExist, "AWS.SimpleQueueService.NonExistentQueue", "send to a deleted queue")
print("ok", checks, "checks")
