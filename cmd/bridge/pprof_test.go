package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServePprof: --pprof serves the runtime's profiles, a goroutine dump
// among them, on its own listener, and stops serving when stopped.
func TestServePprof(t *testing.T) {
	t.Parallel()
	addr, stop, err := servePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "TestServePprof") {
		stop()
		t.Fatalf("goroutine profile: %d\n%.300s", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("pprof still served after stop")
	}
	if _, _, err := servePprof("127.0.0.1:bad"); err == nil {
		t.Fatal("a bad address must fail")
	}
}
