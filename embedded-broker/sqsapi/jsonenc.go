package sqsapi

import (
	"github.com/bridgeio/bridge/internal/jsonstr"
)

// Responses on the hot path (SendMessageBatch, ReceiveMessage,
// DeleteMessageBatch) are built by appending to a byte slice: encoding/json's
// reflection showed up as the largest allocation source per message in the
// benchmark, and the shapes are small and fixed.

// appendJSONString appends s as a JSON string, as encoding/json writes it
// (invalid UTF-8 becomes U+FFFD, so the output is always valid JSON).
func appendJSONString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }

// appendJSONField appends ,"name":"value" (or without the comma when first).
func appendJSONField(dst []byte, first bool, name, value string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return appendJSONString(dst, value)
}
