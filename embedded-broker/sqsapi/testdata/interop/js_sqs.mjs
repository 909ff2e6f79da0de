// The AWS SDK for JavaScript v3 (@aws-sdk/client-sqs, JSON 1.0 protocol)
// against the endpoint given as argv[2]; the SDK is loaded from the npm
// prefix in SQS_JS_DIR. Credentials and region come from the environment.
// Exits non-zero at the first wrong answer. Run by TestJSSDKInterop.
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import path from "node:path";

const require = createRequire(path.join(process.env.SQS_JS_DIR, "package.json"));
const sqs = require("@aws-sdk/client-sqs");
const version = require("@aws-sdk/client-sqs/package.json").version;
const endpoint = process.argv[2];
const client = new sqs.SQSClient({ endpoint, maxAttempts: 1 });
console.log(`@aws-sdk/client-sqs ${version} protocol ${client.config.protocol?.constructor?.name ?? "awsJson1_0"}`);

let checks = 0;
function check(cond, what) {
  if (!cond) {
    console.error("FAILED:", what);
    process.exit(1);
  }
  checks++;
}
async function expectError(p, type, code, what) {
  try {
    await p;
  } catch (e) {
    check(e instanceof type, `${what}: ${e.name} is not ${type.name}`);
    check(e.Code === code || e.name === code, `${what}: code ${e.Code} / ${e.name}`);
    return;
  }
  check(false, `${what}: no error`);
}
const md5 = (s) => createHash("md5").update(s).digest("hex");
const send = (cmd) => client.send(cmd);
const suffix = Math.random().toString(16).slice(2, 10);

const { QueueUrl: url } = await send(new sqs.CreateQueueCommand({ QueueName: `js-${suffix}`, Attributes: { VisibilityTimeout: "20" } }));
check(url.endsWith(`/000000000000/js-${suffix}`), `create url ${url}`);
check((await send(new sqs.GetQueueUrlCommand({ QueueName: `js-${suffix}` }))).QueueUrl === url, "get url");
const body = "caf\u00e9 \ud83d\ude00 <x> & \"q\"";
const sent = await send(new sqs.SendMessageCommand({
  QueueUrl: url, MessageBody: body,
  MessageAttributes: { k: { DataType: "String", StringValue: "v" }, b: { DataType: "Binary", BinaryValue: Uint8Array.of(0, 1, 2) } },
}));
check(sent.MD5OfMessageBody === md5(body), "MD5OfMessageBody");
const batch = await send(new sqs.SendMessageBatchCommand({
  QueueUrl: url,
  Entries: [
    { Id: "a", MessageBody: "one" },
    { Id: "b", MessageBody: "two", DelaySeconds: 0 },
    { Id: "bad", MessageBody: "x", MessageAttributes: { k: { DataType: "Nope", StringValue: "v" } } },
  ],
}));
check(batch.Successful.map((e) => e.Id).sort().join() === "a,b", `batch successes ${JSON.stringify(batch)}`);
check(batch.Failed.length === 1 && batch.Failed[0].Id === "bad" && batch.Failed[0].Code === "InvalidParameterValue", "batch failure");
const got = [];
while (got.length < 3) {
  const r = await send(new sqs.ReceiveMessageCommand({
    QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
    MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["ApproximateReceiveCount"],
  }));
  check(r.Messages?.length > 0, "messages arrive");
  got.push(...r.Messages);
}
const first = got.find((m) => m.Body === body);
check(first && first.MessageAttributes.k.StringValue === "v", "string attribute");
check(Buffer.from(first.MessageAttributes.b.BinaryValue).equals(Buffer.from([0, 1, 2])), "binary attribute");
check(got.every((m) => m.Attributes.ApproximateReceiveCount === "1"), "receive count");
const del = await send(new sqs.DeleteMessageBatchCommand({
  QueueUrl: url,
  Entries: [...got.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })), { Id: "dbad", ReceiptHandle: "garbage" }],
}));
check(del.Successful.length === 3 && del.Failed[0].Id === "dbad" && del.Failed[0].Code === "ReceiptHandleIsInvalid", "delete batch");
await expectError(send(new sqs.GetQueueUrlCommand({ QueueName: `none-${suffix}` })), sqs.QueueDoesNotExist,
  "AWS.SimpleQueueService.NonExistentQueue", "typed QueueDoesNotExist");
await expectError(send(new sqs.DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "garbage" })), sqs.ReceiptHandleIsInvalid,
  "ReceiptHandleIsInvalid", "typed ReceiptHandleIsInvalid");

const { QueueUrl: fifo } = await send(new sqs.CreateQueueCommand({
  QueueName: `js-${suffix}.fifo`, Attributes: { FifoQueue: "true", ContentBasedDeduplication: "true" },
}));
for (const b of ["f0", "f1", "f0"]) {
  await send(new sqs.SendMessageCommand({ QueueUrl: fifo, MessageBody: b, MessageGroupId: "g" }));
}
const fifoGot = await send(new sqs.ReceiveMessageCommand({ QueueUrl: fifo, MaxNumberOfMessages: 10 }));
check(fifoGot.Messages.map((m) => m.Body).join() === "f0,f1", `FIFO order and dedup ${JSON.stringify(fifoGot.Messages)}`);
for (const q of [url, fifo]) {
  await send(new sqs.DeleteQueueCommand({ QueueUrl: q }));
}
console.log(`ok ${checks} checks`);
