// Package rules compiles and evaluates the expr rules of bridge pipelines
// (SPEC §4): filter, when, key, routing_key, group_id, dedup_id, the
// failure rules retry_if and dead_letter_if, and transforms (Transform:
// value, key, headers, split, drop_if; docs/transforms.md).
//
// # Environment
//
// Event rules (Compile) see:
//
//	body       any                value parsed as JSON; nil when value is not JSON
//	value      string             the raw value as text
//	key        string             the raw key as text ("" when there is no key)
//	headers    map[string]string  the last value of each header name
//	topic      string             backbone coordinates ...
//	partition  int
//	offset     int
//	timestamp  time.Time
//	source     string             the name of the source that produced the event ("http" for ingest)
//
// Failure rules (CompileErrorRule) see all of the above plus error:
//
//	error.message    string  the sink's error text
//	error.permanent  bool    the sink classified it as permanent (wraps event.ErrPermanent)
//	error.attempts   int     delivery attempts so far
//	error.class      string  "retryable" or "permanent"
//	error.route      string  the route's name
//	error.target     string  the route's target (e.g. "exchange:orders")
//
// Transform rules in a transform that splits (SplitScope) also see item
// (the element) and index (its position). Rules may call the helpers now,
// uuid, sha256, base64Encode, base64Decode, bytes, omit, pick and merge
// besides expr's builtins; now() is read once per origin event (Reset),
// and uuid() is derived from the origin's bridge-event-id, the step, the
// split path and the call site, so a redelivered event gets the same ids.
//
// # Guarantees
//
//   - A rule is compiled once, with expr's type checker. A Bool rule whose
//     result is not boolean, an unknown name, or a type error is a
//     *CompileError with a 1-based line and column inside the rule and, for
//     a misspelt name, a suggestion ("unknown name bdy (did you mean body?)").
//   - Reset is O(1). The body is decoded at most once per event and only if a
//     rule reads it. A rule that reads constant paths (body.type,
//     body["a"].b) does not build a map at all: one validating scan of the
//     JSON materialises just those fields. A rule that uses body as a whole
//     (body[x], len(body), body alone) decodes it fully, once per event.
//   - Short strings read by paths go through a small bounded intern table
//     per Env, so enumerations (types, regions) cost no allocation after the
//     first event; strings are immutable, so sharing them is safe.
//   - Decoded values have encoding/json's shapes, with one difference:
//     an integer literal (no fraction, no exponent) that fits int64 is an
//     int, so integer operators work (body.n % 2) and ids render exactly;
//     other numbers are float64, and expr compares and adds the two freely
//     (42 == 42.0). Objects are map[string]any (last duplicate key wins),
//     arrays []any. A value that is not valid JSON (as encoding/json judges
//     it) gives body == nil.
//   - Body fields named like expr builtins (body.type, body.len, body.count)
//     are plain fields.
//   - Evaluation never panics: a run-time error (arithmetic on a string,
//     comparing nil with a number) comes back as an error, for the pipeline's
//     on_error.
//
// # Semantics to know
//
//   - A missing body field is nil. A path through a missing or non-object
//     value (body.a.b when a is absent or a number) is also nil, where plain
//     expr would fail with "cannot fetch b from <nil>".
//   - nil compared with a number is an error, as in expr:
//     body.amount >= 100 fails when amount is missing or is a string. Write
//     (body.amount ?? 0) >= 100 to treat a missing amount as 0.
//   - A Bool rule whose result is nil (body.flag with flag missing) is false;
//     any other non-bool result is an error.
//   - EvalString renders strings as they are, numbers and booleans as their
//     JSON text (100, 12.5, true), maps and arrays as JSON, times in RFC 3339;
//     nil is "absent" (ok == false).
//   - $env is not available in rules.
//
// # Not guaranteed
//
// Env is not safe for concurrent use: use one per goroutine. Programs are
// immutable and may be shared. The event passed to Reset must not change
// until the next Reset.
package rules
