// kafkajs side of bridge's Kafka interop suite (interop_test.go).
//
//   node kafkajs.js produce ADDR TOPIC N CODEC PREFIX [idempotent]
//   node kafkajs.js group ADDR TOPIC GROUP N      consume N in GROUP from the beginning, commit, leave
//   node kafkajs.js member ADDR TOPIC GROUP       consume in GROUP (auto commit) until $STOP_FILE exists
// Codecs: gzip is built in; snappy via kafkajs-snappy; lz4 and zstd through
// small wrappers over the pure-JS lz4js and zstd-codec (native codec
// packages cannot build here).
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require("kafkajs");
const SnappyCodec = require("kafkajs-snappy");
const lz4js = require("lz4js");
const { ZstdCodec } = require("zstd-codec");

async function setupCodecs() {
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    async compress(encoder) { return Buffer.from(lz4js.compress(encoder.buffer)); },
    async decompress(buffer) { return Buffer.from(lz4js.decompress(buffer)); },
  });
  const zstd = await new Promise((resolve) => ZstdCodec.run((z) => resolve(new z.Simple())));
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    async compress(encoder) { return Buffer.from(zstd.compress(encoder.buffer)); },
    async decompress(buffer) { return Buffer.from(zstd.decompress(buffer)); },
  });
}

const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD };

async function produce(kafka, topic, n, codec, prefix, idempotent) {
  const producer = kafka.producer({ idempotent, maxInFlightRequests: idempotent ? 1 : 5, allowAutoTopicCreation: false });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < n; i++) messages.push({ key: `k${i}`, value: `${prefix}-${i}`, headers: { h: `${i}` } });
  for (let i = 0; i < n; i += 50) {
    await producer.send({ topic, compression: codecs[codec], acks: -1, messages: messages.slice(i, i + 50) });
  }
  await producer.disconnect();
}

async function consume(kafka, topic, group, n, member) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  await new Promise((resolve, reject) => {
    // A member runs until the test's marker file appears (it cannot know
    // its share); a lone consumer until it got n records.
    const timer = member ? null : setTimeout(() => reject(new Error(`consumed ${got} of ${n}`)), 30000);
    consumer.run({
      autoCommit: member,
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) => {
        console.log(`${message.value.toString()}`);
        got++;
        if (!member) {
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
          if (got >= n) { clearTimeout(timer); resolve(); }
        }
      },
    }).catch(reject);
    if (member) {
      const fs = require("fs");
      const poll = setInterval(() => { if (fs.existsSync(process.env.STOP_FILE)) { clearInterval(poll); resolve(); } }, 100);
    }
  });
  await consumer.disconnect();
}

async function main() {
  const [cmd, addr, topic, ...rest] = process.argv.slice(2);
  console.error(`kafkajs ${require("kafkajs/package.json").version}`);
  await setupCodecs();
  const kafka = new Kafka({ clientId: "interop-kafkajs", brokers: [addr], logLevel: logLevel.ERROR, retry: { retries: 10, initialRetryTime: 100 } });
  if (cmd === "produce") await produce(kafka, topic, Number(rest[0]), rest[1], rest[2], rest[3] === "idempotent");
  else if (cmd === "group") await consume(kafka, topic, rest[0], Number(rest[1]), false);
  else if (cmd === "member") await consume(kafka, topic, rest[0], Number(rest[1]), true);
  else throw new Error(`unknown command ${cmd}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
