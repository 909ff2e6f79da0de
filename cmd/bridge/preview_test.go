package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bridgeio/bridge/pipelines"
)

const previewConfig = `
data_dir: ./data
backbone:
  topics: { orders: {}, tasks: {}, audit: {} }
pipelines:
  - name: tasks
    from: orders
    filter: 'body.type == "order.created"'
    transform:
      split: 'body.items'
      value: '{"order": body.id, "sku": item.sku}'
      key: 'body.id + "/" + item.sku'
    routes:
      - name: eu
        when: 'body.sku != "skip"'
        to: { topic: tasks }
  - name: audit
    from: audit
    routes: [ { to: { topic: tasks } } ]
`

func TestTailTransformPreview(t *testing.T) {
	t.Parallel()
	plan, err := pipelines.Parse("cfg.yaml", []byte(previewConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPreview(plan, "", "nothing"); err == nil || !strings.Contains(err.Error(), "--pipeline") {
		t.Fatalf("no pipeline reads the topic: %v", err)
	}
	if _, err := newPreview(plan, "nope", "orders"); err == nil || !strings.Contains(err.Error(), "tasks, audit") {
		t.Fatalf("unknown pipeline: %v", err)
	}
	pv, err := newPreview(plan, "", "orders")
	if err != nil {
		t.Fatal(err)
	}
	order := wireEvent{Partition: 1, Offset: 5, Headers: map[string]string{},
		Value: json.RawMessage(`{"type":"order.created","id":"o-1","items":[{"sku":"a"},{"sku":"skip"},{"sku":"b"}]}`)}
	var text bytes.Buffer
	if n := pv.show(&text, "orders", order, "table"); n != 2 {
		t.Fatalf("%d outputs:\n%s", n, text.String())
	}
	want := "1/5\t-> eu\tkey=o-1/a\tpart=0\t{\"order\":\"o-1\",\"sku\":\"a\"}\n" +
		"1/5\t-> eu\tkey=o-1/b\tpart=2\t{\"order\":\"o-1\",\"sku\":\"b\"}\n"
	if text.String() != want {
		t.Fatalf("preview:\n%s\nwant:\n%s", text.String(), want)
	}

	var js bytes.Buffer
	pv.show(&js, "orders", order, "json")
	var first previewOutput
	if err := json.Unmarshal(bytes.Split(js.Bytes(), []byte("\n"))[0], &first); err != nil {
		t.Fatal(err)
	}
	if first.Route != "eu" || *first.Key != "o-1/a" || first.Headers["bridge-split-index"] != "0" || string(first.Value) != `{"order":"o-1","sku":"a"}` {
		t.Fatalf("json preview %+v", first)
	}

	bad := order
	bad.Value = json.RawMessage(`{"type":"order.created","id":"o-2","items":"not a list"}`)
	other := order
	other.Value = json.RawMessage(`{"type":"order.paid"}`)
	var errs bytes.Buffer
	pv.show(&errs, "orders", bad, "table")
	pv.show(&errs, "orders", other, "table") // the filter drops it: nothing printed
	if got := errs.String(); !strings.HasPrefix(got, "1/5\terror: pipeline tasks: transform: split:") || strings.Count(got, "\n") != 1 {
		t.Fatalf("error preview %q", got)
	}
}
