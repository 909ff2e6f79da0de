package versions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreSaveDedupAndJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v1, existing, err := s.Save([]byte("a: 1\n"))
	if err != nil || v1 != 1 || existing {
		t.Fatalf("first save: %d %v %v", v1, existing, err)
	}
	if v, existing, _ := s.Save([]byte("a: 1\n")); v != 1 || !existing {
		t.Fatalf("same bytes: version %d existing %v, want 1 true", v, existing)
	}
	v2, _, err := s.Save([]byte("a: 2\n"))
	if err != nil || v2 != 2 {
		t.Fatalf("second save: %d %v", v2, err)
	}
	if err := s.Append(Record{Version: 1, Action: ActionStart, Live: 1, Source: "start"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(Record{Version: 2, Action: ActionApply, Live: 2, From: 1, Source: "cli",
		Takeovers: []Takeover{{Pipeline: "p", Route: "r", Action: "changed", Version: 2, Offsets: map[int32]int64{0: 17}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(Record{Version: 0, Action: ActionApply}); err == nil {
		t.Fatal("a record of version 0 was accepted")
	}
	s.Close()
	// A torn last line (crash while appending) is dropped on open.
	path := filepath.Join(dir, journalName)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"version":3,"act`)
	f.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := s.Journal()
	if len(j) != 2 || j[1].Takeovers[0].Offsets[0] != 17 || s.Live() != 2 {
		t.Fatalf("journal after reopen: %+v, live %d", j, s.Live())
	}
	vs, err := s.Versions()
	if err != nil || len(vs) != 2 || !vs[1].Live || vs[0].Live {
		t.Fatalf("versions %+v %v", vs, err)
	}
	data, err := s.Config(1)
	if err != nil || string(data) != "a: 1\n" {
		t.Fatalf("config 1: %q %v", data, err)
	}
	if _, err := s.Config(9); err == nil {
		t.Fatal("version 9 found")
	}
}

func TestDecodeJournalRejectsDamage(t *testing.T) {
	good := `{"version":1,"action":"start","time":"2026-01-01T00:00:00Z","live":1}` + "\n"
	for name, bad := range map[string]string{
		"not json":        "garbage\n",
		"unknown action":  `{"version":1,"action":"explode","time":"2026-01-01T00:00:00Z","live":1}` + "\n",
		"unknown field":   `{"version":1,"action":"start","live":1,"extra":true}` + "\n",
		"zero version":    `{"version":0,"action":"start","live":1}` + "\n",
		"two records":     `{"version":1,"action":"start","live":1}{"version":1,"action":"start","live":1}` + "\n",
		"canary over 100": `{"version":1,"action":"canary","live":1,"canary_percent":101}` + "\n",
	} {
		_, _, err := DecodeJournal([]byte(good + bad + good))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: err %v, want an error naming line 2", name, err)
		}
	}
	recs, n, err := DecodeJournal([]byte(good + `{"version":2`))
	if err != nil || len(recs) != 1 || n != len(good) {
		t.Fatalf("torn tail: %d records, %d bytes, %v", len(recs), n, err)
	}
}

// FuzzDecodeJournal: the decoder never panics, what it covers is a prefix
// ending at a newline, and the records it returns re-encode and decode to
// the same count.
func FuzzDecodeJournal(f *testing.F) {
	f.Add([]byte(`{"version":1,"action":"start","time":"2026-01-01T00:00:00Z","live":1}` + "\n"))
	f.Add([]byte(`{"version":2,"action":"apply","live":2,"from":1,"takeovers":[{"pipeline":"p","route":"r","action":"changed","version":2,"offsets":{"0":5}}]}` + "\n{\"ver"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, n, err := DecodeJournal(data)
		if err != nil {
			return
		}
		if n > len(data) || (n > 0 && data[n-1] != '\n') {
			t.Fatalf("covered %d of %d bytes, not ending at a newline", n, len(data))
		}
		for _, r := range recs {
			if err := r.check(); err != nil {
				t.Fatalf("returned an invalid record: %v", err)
			}
		}
	})
}
