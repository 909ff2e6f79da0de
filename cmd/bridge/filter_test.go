package main

import (
	"encoding/json"
	"testing"
)

func TestEventFilter(t *testing.T) {
	t.Parallel()
	key := "order-1"
	ev := wireEvent{Partition: 2, Offset: 7, Key: &key, Headers: map[string]string{"region": "eu", "traceparent": "x"},
		Value: json.RawMessage(`{"amount":120,"type":"order.created"}`), Timestamp: "2026-01-02T03:04:05Z"}
	binary := wireEvent{ValueBase64: "aGVsbG8=", Headers: map[string]string{}}
	for _, tc := range []struct {
		name, expr string
		ev         wireEvent
		want       bool
	}{
		{"no filter", "", ev, true},
		{"body field", `body.amount >= 100`, ev, true},
		{"body field false", `body.amount > 500`, ev, false},
		{"header", `headers["region"] == "eu"`, ev, true},
		{"key", `key == "order-1"`, ev, true},
		{"topic partition offset", `topic == "orders" && partition == 2 && offset == 7`, ev, true},
		{"binary value", `value == "hello"`, binary, true},
		{"runtime error does not pass", `body.type * 2 > 1`, ev, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newEventFilter(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.match("orders", tc.ev); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := newEventFilter("(("); err == nil {
		t.Fatal("a broken expression compiled")
	}
}
