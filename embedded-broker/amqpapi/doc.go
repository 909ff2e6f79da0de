// Package amqpapi is an AMQP 0-9-1 listener on the embedded broker:
// unmodified RabbitMQ clients publish into the exchanges and queues of
// packages exchange and queue, and consume from them. See DESIGN.md in
// this folder for the internals.
//
// Guarantees:
//   - A publisher confirm (basic.ack) is sent only after every queue the
//     message was routed to has it durable under the fsync policy; a
//     mandatory message no queue took is returned (basic.return) before its
//     confirm. A message a queue refuses is nacked.
//   - A delivered message that is not acknowledged is held for its
//     consumer with no deadline: it is never delivered to another consumer
//     (AMQP or SQS) while the consumer's channel is open. Closing the
//     channel or connection, or a restart, makes it visible again, and its
//     next delivery has redelivered set.
//   - basic.ack deletes the message (durable under the policy);
//     nack/reject with requeue makes it visible at once (new delivery tag,
//     redelivered); without requeue it moves to the queue's dead-letter
//     queue, or is dropped when there is none.
//   - Delivery tags are per channel, increase, and reach the client in order.
//   - Exchanges, queues and bindings declared durable survive restart and
//     kill -9; transient and exclusive queues do not.
//   - Channel errors (404, 405, 406, 403) close only their channel; hard
//     errors (5xx) close the connection, as RabbitMQ does.
//   - Back-pressure: a connection whose publishes arrive faster than they
//     are stored stops being read, and is told with connection.blocked.
//
// Not supported: transactions (tx.* is refused with 540), exchange-to-
// exchange bindings, vhosts other than "/", the queue arguments for TTL,
// length limits, priorities and dead-letter exchanges (refused with 406
// rather than ignored), alternate exchanges, basic.recover with
// requeue=false, prefetch_size.
package amqpapi
