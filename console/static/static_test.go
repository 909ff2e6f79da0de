package static

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPinnedChecksums checks every third-party file against SHA256SUMS and
// that no served script or stylesheet other than the console's own is
// missing from it.
func TestPinnedChecksums(t *testing.T) {
	sums, err := fs.ReadFile(FS(), "SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not 'SUM  NAME'", sc.Text())
		}
		data, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatalf("%s listed but not embedded: %v", name, err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("%s: sha256 %x, SHA256SUMS says %s", name, got, want)
		}
		listed[name] = true
	}
	for _, name := range []string{HTMX, HTMXSSE, UPlot, UPlotCSS} {
		if !listed[name] {
			t.Errorf("pinned file %s has no checksum", name)
		}
	}
	entries, _ := fs.ReadDir(FS(), ".")
	for _, e := range entries {
		n := e.Name()
		if (strings.HasSuffix(n, ".js") || strings.HasSuffix(n, ".css")) && n != CSS && n != JS && !listed[n] {
			t.Errorf("%s is served but has no checksum in SHA256SUMS", n)
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		name, path, ctype string
		status            int
		immutable         bool
	}{
		{"versioned script", "/" + HTMX + "?v=" + versions[HTMX], "text/javascript; charset=utf-8", 200, true},
		{"unversioned css", "/" + CSS, "text/css; charset=utf-8", 200, false},
		{"missing", "/nope.js", "", 404, false},
		{"no traversal", "/../static.go", "", 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := strings.Contains(rec.Header().Get("Cache-Control"), "immutable"); got != tc.immutable {
				t.Errorf("Cache-Control %q, immutable want %v", rec.Header().Get("Cache-Control"), tc.immutable)
			}
		})
	}
	if p := Path("/console/static", JS); !strings.HasPrefix(p, "/console/static/console.js?v=") || len(p) != len("/console/static/console.js?v=")+12 {
		t.Errorf("Path = %q", p)
	}
}
