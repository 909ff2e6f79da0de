// Interop suite for amqplib (npm). Runs the same checks against bridge's
// AMQP API and the real RabbitMQ: AMQP_URL names the server, PREFIX makes
// queue names unique, AMQPLIB_DIR is where amqplib is installed. Each check
// prints "ok NAME"; the first failure prints "FAIL NAME: why" and exits 1.
'use strict';
const amqp = require(require('path').join(process.env.AMQPLIB_DIR, 'node_modules', 'amqplib'));

const URL = process.env.AMQP_URL;
const PREFIX = process.env.PREFIX;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fail(name, why) {
  console.log(`FAIL ${name}: ${why}`);
  process.exit(1);
}
const ok = (name) => console.log(`ok ${name}`);

async function main() {
  const conn = await amqp.connect(URL + (URL.includes('?') ? '&' : '?') + 'heartbeat=1');
  conn.on('error', (e) => fail('connection', e.message));
  const ch = await conn.createConfirmChannel();

  const q = await ch.assertQueue('', { exclusive: true });
  if (!q.queue.startsWith('amq.gen-')) fail('server-named queue', q.queue);
  ok('server-named queue');

  const work = `${PREFIX}-amqplib-work`;
  await ch.assertQueue(work, { durable: true });
  for (let i = 0; i < 20; i++) {
    ch.publish('', work, Buffer.from(`m${i}`), { persistent: true, contentType: 'text/plain', headers: { n: i } });
  }
  await ch.waitForConfirms();
  const check = await ch.checkQueue(work);
  if (check.messageCount !== 20) fail('publish with confirms', `queue holds ${check.messageCount}`);
  ok('publish with confirms');

  const cch = await conn.createChannel();
  await cch.prefetch(5);
  const held = [];
  let total = 0;
  let acking = false;
  const { consumerTag } = await cch.consume(work, (msg) => {
    total++;
    if (acking) cch.ack(msg);
    else held.push(msg);
  });
  await sleep(1000);
  if (held.length !== 5) fail('prefetch', `${held.length} deliveries without acks, want 5`);
  const m0 = held[0];
  if (m0.content.toString() !== 'm0' || m0.properties.headers.n !== 0 || m0.properties.contentType !== 'text/plain') {
    fail('properties', JSON.stringify(m0.properties));
  }
  acking = true;
  held.forEach((m) => cch.ack(m));
  for (let i = 0; i < 50 && total < 20; i++) await sleep(100);
  if (total !== 20) fail('consume with acks', `received ${total} of 20`);
  await cch.cancel(consumerTag);
  ok('consume with acks and prefetch');

  ch.publish('', work, Buffer.from('again'));
  await ch.waitForConfirms();
  const seen = [];
  const { consumerTag: tag2 } = await cch.consume(work, (msg) => {
    seen.push(msg);
    if (seen.length === 1) cch.nack(msg, false, true);
    else cch.ack(msg);
  });
  for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(100);
  if (seen.length < 2) fail('requeue', `${seen.length} deliveries`);
  const [a, b] = seen;
  if (a.fields.redelivered || !b.fields.redelivered || b.fields.deliveryTag === a.fields.deliveryTag || b.content.toString() !== 'again') {
    fail('requeue', `first redelivered=${a.fields.redelivered} second redelivered=${b.fields.redelivered} tags ${a.fields.deliveryTag}/${b.fields.deliveryTag}`);
  }
  await cch.cancel(tag2);
  ok('requeue');

  let returned = null;
  ch.on('return', (msg) => { returned = msg; });
  ch.publish('amq.direct', `${PREFIX}-nowhere`, Buffer.from('x'), { mandatory: true });
  await ch.waitForConfirms();
  if (!returned || returned.fields.replyCode !== 312) fail('mandatory return', 'no basic.return before the confirm');
  ok('mandatory return');

  await sleep(3500);
  await ch.checkQueue(work);
  ok('heartbeats');

  const bad = await conn.createChannel();
  let closedWith = null;
  bad.on('error', (e) => { closedWith = e; });
  try {
    await bad.checkQueue(`${PREFIX}-missing`);
    fail('channel error', 'passive declare of a missing queue succeeded');
  } catch (e) {
    if (e.code !== 404) fail('channel error', `code ${e.code}`);
  }
  await sleep(100);
  if (!closedWith) fail('channel error', 'no channel error event');
  const again = await conn.createChannel();
  await again.checkQueue(work);
  ok('channel error closes only the channel');

  await again.deleteQueue(work);
  await conn.close();
}

main().catch((e) => fail('unexpected', e.stack || e));
