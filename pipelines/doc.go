// Package pipelines turns bridge's YAML configuration (SPEC §3) into a
// validated, immutable Plan that the engine runs, and runs `bridge test`
// rule cases against a Plan without any broker.
//
// # Config → plan
//
// Parse (and Load) go through fixed stages:
//
//  1. ${VAR} and ${VAR:-default} are replaced from the environment, $$ is a
//     literal $, and lines that are YAML comments are left alone (a comment
//     after a value on the same line is not: write $$ there). A default
//     applies when VAR is unset or empty, as in POSIX shells.
//  2. The text is parsed once into a yaml.Node tree, which indexes every
//     field path ("pipelines[0].routes[1].to.exchange") to its line and
//     column, and is walked against the config types to find unknown keys,
//     wrong scalar types and unreadable durations and sizes, all at once.
//  3. The same text is decoded into plain structs with KnownFields(true);
//     the types have no custom UnmarshalYAML (Duration and ByteSize are
//     encoding.TextUnmarshalers, which keeps KnownFields in force).
//  4. applyDefaults fills unset fields (the Default* constants).
//  5. Everything semantic is checked and every rule is compiled with the
//     rules package: enums, ranges, required fields, references (topics,
//     queues, exchanges, connections and their types), duplicate names,
//     route targets, SQS FIFO rules, transforms (each expression checked
//     for the kind it must yield; reserved headers; transform.go).
//
// Each stage reports every problem it finds; a later stage runs only when
// the earlier ones found nothing, because its findings would be noise (a
// missing variable would also be a "required" field).
//
// # Guarantees
//
//   - A config that Parse accepts has every rule compiled and type-checked,
//     every reference resolved, and no unknown key; the engine never sees an
//     invalid config, and `bridge validate` and `bridge run` report the same
//     messages because both call Parse.
//   - A failure is errors.Join of *FieldError sorted by position, each
//     rendering "FILE:LINE:COL: path.to.field: message" and wrapping one of
//     the Err* sentinels. A rule's error points inside the YAML scalar where
//     the rule goes wrong: exactly for plain, single-quoted and | scalars and
//     for double-quoted ones without escapes; at the scalar's start for >
//     scalars.
//   - Outputs runs the chain filter → pipeline transform → when → route
//     transform → target rules exactly as the engine's route cursor does,
//     over the same rules.Transform; `bridge test` and `bridge tail
//     --transform` use it. Evaluate (routes only, no transforms) serves
//     `bridge migrate --verify`.
//
// # Non-guarantees
//
//   - yaml.v3 gives syntax errors a line only (sometimes the line before the
//     culprit); those render as "FILE:LINE: message".
//   - A variable whose value contains a newline shifts later line numbers;
//     values are inserted as raw text, so they can also change the YAML
//     structure, as with docker compose.
//   - Existence of files (tls.ca_file), reachability of brokers and the
//     content of external names (an SQS queue URL, a Kafka topic outside the
//     backbone) are checked by the engine at start, not here.
//
// # bridge test cases
//
// A cases file is YAML with a list under "cases"; each case names a
// pipeline, gives an input event and the expected outcome:
//
//	cases:
//	  - name: an EU order goes to the EU queue
//	    pipeline: orders-to-fulfillment
//	    event:                     # every field optional
//	      key: o-1                 # absent: no key
//	      headers: { tenant: acme }
//	      value: { type: order.created, region: eu }  # a string is the raw value; anything else is sent as JSON
//	      topic: orders            # default: the pipeline's from
//	      partition: 0
//	      offset: 0
//	      timestamp: 2026-01-01T00:00:00Z
//	      source: http             # default: http
//	    now: 2026-01-01T00:00:00Z  # optional: what now() returns
//	    expect:                    # exactly one of routes, dropped, error
//	      routes: [fulfillment]    # the routes that send something, in file order
//	      rendered:                # optional: computed values per route (every output)
//	        fulfillment: { routing_key: order.created.eu }
//	      parts: { fulfillment: 1 }  # optional: how many events each route sends
//	      outputs:                 # optional: every event a route sends, in order
//	        fulfillment:
//	          - value: { sku: tea }          # a mapping/list/number: compared as JSON; a string: exact text; null: no value
//	            key: o-1                     # the key the target receives
//	            headers: { bridge-split-index: "0", x-gone: null }   # null: must be absent
//	            routing_key: order.created.eu  # also group_id, dedup_id
//	  - name: cancelled orders are dropped
//	    pipeline: orders-to-fulfillment
//	    event: { value: { type: order.cancelled } }
//	    expect: { dropped: true }  # or error: true when a rule fails at run time
//
// Route names are the `name:` of a route or its default, derived from the
// target: "topic:T", "exchange:X", "queue:Q", "kafka:CONN/TOPIC",
// "amqp:CONN/EXCHANGE", "sqs:CONN/QUEUE". pipelines/examples holds configs
// with cases that pass.
package pipelines
