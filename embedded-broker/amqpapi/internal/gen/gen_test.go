package gen

import (
	"strings"
	"testing"
)

func TestGenerateRejects(t *testing.T) {
	licence := "<!-- Redistribution and use ... -->\n"
	tests := []struct {
		name, xml, want string
	}{
		{"not XML", "<amqp", "parse"},
		{"wrong version", licence + `<amqp major="0" minor="8" revision="0"></amqp>`, "want 0-9-1"},
		{"no licence notice", `<amqp major="0" minor="9" revision="1"><class name="connection" index="10"/></amqp>`, "no licence notice"},
		{"unknown domain", licence + `<amqp major="0" minor="9" revision="1"><class name="connection" index="10">
			<method name="x" index="1"><field name="f" domain="nope"/></method></class></amqp>`, "unknown type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate([]byte(tc.xml), "test.xml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{"reply-code": "ReplyCode", "reserved-1": "Reserved1", "connection": "Connection", "get-ok": "GetOk"} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
}
