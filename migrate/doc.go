// Package migrate runs one migration between messaging systems and
// verifies it: `bridge migrate --from URL --to URL [--verify]`.
//
// A migration is a pipeline built in memory and run by the engine: the
// --from system's source connector appends into a local commitlog (the
// ledger, in a state dir) and acknowledges upstream only once the append
// is durable; one route reads the ledger and sends to the --to system's
// sink connector, checkpointing only what the target acknowledged. The
// guarantees are a pipeline's (SPEC §5): nothing acknowledged to the
// source is lost across crashes, at-least-once delivery, the ledger's
// order per partition (one partition by default: a queue's total order).
// A rerun with the same state dir continues where the last run stopped.
//
// Verification reads the whole ledger (the record of what left the
// source), reads the target back without consuming it, matches messages
// by bridge-event-id and compares SHA-256 digests over key, body and the
// carried headers. It reports missing, extra, duplicate, reordered and
// altered messages (Report) and writes a position map. It does not
// guarantee anything about messages written to the target by others
// while it reads, and a FIFO SQS target cannot be read back.
//
// Only cmd/bridge imports this package. Run is the entry point; ParseURL
// parses the endpoint URLs of SPEC §8.
package migrate
