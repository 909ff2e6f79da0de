// Package static holds the console's browser files, embedded in the binary:
// the pinned htmx, htmx SSE extension and uPlot builds (their SHA-256 sums
// are in SHA256SUMS and checked by a test) and the console's own CSS and
// script. Nothing is fetched at run time and `go build` needs no npm.
//
// Handler serves them with a long cache lifetime; pages reference them
// through Path, which appends a content hash so a new binary is never
// served a stale copy.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed *.js *.css *.LICENSE SHA256SUMS
var files embed.FS

// The pinned files, by role.
const (
	HTMX     = "htmx-2.0.11.min.js"
	HTMXSSE  = "htmx-ext-sse-2.2.4.min.js"
	UPlot    = "uPlot-1.6.32.iife.min.js"
	UPlotCSS = "uPlot-1.6.32.min.css"
	CSS      = "console.css"
	JS       = "console.js"
)

// FS returns the embedded files.
func FS() fs.FS { return files }

// versions maps a file name to the first 12 hex digits of its SHA-256.
var versions = func() map[string]string {
	out := map[string]string{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		data, _ := fs.ReadFile(files, e.Name())
		sum := sha256.Sum256(data)
		out[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return out
}()

// Path returns the URL of an embedded file under prefix, with its content
// hash as the query so caches never serve a stale copy.
func Path(prefix, name string) string {
	return path.Join(prefix, name) + "?v=" + versions[name]
}

// Handler serves the embedded files; mount it with http.StripPrefix.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		data, err := fs.ReadFile(files, name)
		if err != nil || name == "" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("ETag", `"`+versions[name]+`"`)
		if r.URL.Query().Get("v") == versions[name] {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if match := r.Header.Get("If-None-Match"); match == `"`+versions[name]+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(data)
	})
}
