package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/console/views"
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

// searchPage keeps the rows whose name contains the q parameter (case
// ignored) and returns the page asked for, with its pager.
func searchPage[T any](r *http.Request, all []T, name func(T) string, path string) ([]T, views.Pager) {
	q := trimLower(r.URL.Query().Get("q"))
	rows := all
	if q != "" {
		rows = make([]T, 0, 64)
		for _, row := range all {
			if strings.Contains(strings.ToLower(name(row)), q) {
				rows = append(rows, row)
			}
		}
	}
	page, from, to := pageOf(r, len(rows), listPageSize)
	return rows[from:to], views.Pager{Page: page, PageSize: listPageSize, Total: len(rows), Query: r.URL.Query().Get("q"), Path: path}
}
