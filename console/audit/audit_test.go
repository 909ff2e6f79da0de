package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendListReopenTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []string{"replay", "redrive.queue", "redrive.deadletters", "redrive.queue"} {
		if err := l.Append(Entry{Who: "admin:abc", Action: a, Target: "q", Count: i, Result: "done"}); err != nil {
			t.Fatal(err)
		}
	}
	got, total := l.List(0, 10)
	if total != 3 || len(got) != 3 || got[0].Count != 3 || got[2].Count != 1 {
		t.Fatalf("List = %+v (total %d); want newest first, bounded to 3", got, total)
	}
	if page, _ := l.List(1, 1); len(page) != 1 || page[0].Count != 2 {
		t.Fatalf("second page %+v", page)
	}
	if got[0].Time.IsZero() {
		t.Fatal("time not set")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := l.Append(Entry{}); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	// A crash mid-write leaves a torn line; reopening skips it and the next
	// entry starts on a line of its own.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-11-01T10:00:00Z","who":"adm`)
	f.Close()
	l, err = Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, total := l.List(0, 100); total != 4 {
		t.Fatalf("reopened with %d entries, want 4", total)
	}
	if err := l.Append(Entry{Who: "admin:abc", Action: "replay", Result: "done", Count: 9}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"count":9`) || !strings.HasPrefix(last, "{") {
		t.Fatalf("entry after a torn line: %q", last)
	}
	reopened, _ := Open(path, 100)
	defer reopened.Close()
	if got, total := reopened.List(0, 1); total != 5 || got[0].Count != 9 {
		t.Fatalf("after torn tail + append: %+v total %d", got, total)
	}
}
