// Package amqp connects bridge to RabbitMQ (AMQP 0-9-1) as a source (consume
// a queue into the backbone) and as a sink (publish to an exchange).
//
// # Source guarantees
//
//   - At-least-once: deliveries are consumed with manual acks and gathered
//     into batches (up to BatchSize, or whatever arrived within BatchWait of
//     the first); a batch is acknowledged, with one basic.ack multiple=true on
//     its last delivery tag, only after deliver returned nil. When deliver
//     fails, after a backoff (100ms doubling to 5s, with jitter; never a hot
//     loop) the consumer is cancelled, every delivery RabbitMQ pushed until
//     the cancel-ok is drained, and all of them are rejected with one
//     basic.nack multiple=true requeue=true before consuming again, so none
//     that arrives later can overtake the requeued batch.
//   - Recovery: when RabbitMQ closes the connection or the channel (restart,
//     rabbitmqctl close_all_connections, a network failure), Run reconnects
//     with exponential backoff and jitter and resumes consuming. Deliveries
//     that were not acknowledged are requeued by RabbitMQ and come again, so
//     nothing is lost; they may come twice (a batch whose ack was lost with
//     the connection), which at-least-once allows. Each connection's
//     goroutines and channels are released before the next one is opened.
//   - Run returns nil when ctx is cancelled, and an error only for a failure
//     that retrying cannot fix (access refused, the queue does not exist,
//     a declaration that conflicts with the existing one).
//
// Non-guarantees: order is RabbitMQ's queue order, including after a
// failed deliver; after a lost connection RabbitMQ requeues the
// unacknowledged deliveries to their places in a classic queue, but other
// queue types and several consumers of one queue may reorder them (RabbitMQ's
// own behaviour). Use one source per queue when order matters.
//
// # Sink guarantees
//
//   - Messages are persistent (delivery mode 2) and published with publisher
//     confirms. SendParams publishes the whole batch, then waits for the
//     confirms (pipelined), and returns nil only when every message was
//     confirmed. A nack is a retryable failure of that item; a basic.return
//     (unroutable while Mandatory) is a permanent one (event.ErrPermanent),
//     both reported as a *event.BatchError with the item's index.
//   - A lost connection fails the unconfirmed items of the batch as
//     retryable; the next Send reconnects. A missing exchange (404) or
//     refused access (403) is permanent.
//   - Send is safe for concurrent use; batches are published one at a time
//     on one channel, so events keep the order of Send calls and of their
//     position in a batch.
//
// # Mapping (SPEC §8)
//
// Event headers travel in the AMQP headers table as long strings (any bytes).
// The key is the header bridge-key (nil when absent; SourceConfig.KeyFromMessageID
// uses the message_id property instead). An AMQP table is a map, so a repeated
// header name cannot be stored twice: the second and later values of a name
// (and any header whose name AMQP cannot carry, or that collides with
// bridge-key or bridge-headers) travel in one header bridge-headers, an
// array of [name, value] arrays, which the source unpacks. Table values
// that are not strings are rendered as text: integers and floats in
// decimal, booleans as true/false, timestamps in RFC 3339, byte arrays as
// their bytes, decimals as their value, nested tables and arrays as JSON.
// Order of different header names is not kept (a table is a map; the source
// sorts them by name); the order of values of one name is.
//
// The properties content_type, message_id, correlation_id, reply_to, type,
// priority, timestamp and app_id map to the headers amqp.content_type,
// amqp.message_id, amqp.correlation_id, amqp.reply_to, amqp.type,
// amqp.priority (decimal 0-255), amqp.timestamp (Unix seconds, decimal) and
// amqp.app_id, both ways. A property header whose value does not parse
// (amqp.priority: high) stays an ordinary header. The sink sets the
// timestamp property from the event's Timestamp when amqp.timestamp is
// absent; the source sets the event's Timestamp from the property, or to
// the time of receipt when it is zero.
//
// # Lock order
//
// Sink.mu is the only lock; it is held for a whole Send, so no callback or
// channel send happens under it except to amqp091, whose notifications are
// read inside the same Send.
package amqp
