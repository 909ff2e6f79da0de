package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// streamContext ends when the client goes away or the console closes.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

var errBadNumber = errors.New("not a positive number")

// parsePositive parses a positive integer no larger than limit.
func parsePositive(v string, limit int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > limit {
		return 0, errBadNumber
	}
	return n, nil
}

// intOr parses an integer query value, or returns def when it is empty
// or not a number.
func intOr(v string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def
	}
	return n
}

// pageOf returns the 1-based page asked for and the slice bounds of a list.
func pageOf(r *http.Request, total, size int) (page, from, to int) {
	page = max(intOr(r.URL.Query().Get("page"), 1), 1)
	pages := max((total+size-1)/size, 1)
	page = min(page, pages)
	from = (page - 1) * size
	to = min(from+size, total)
	return page, from, to
}
