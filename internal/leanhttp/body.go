package leanhttp

import (
	"bufio"
	"errors"
	"io"
)

// ErrBodyTooLarge is what a request body's Read returns past
// Server.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("leanhttp: request body too large")

// body is a request body read from the connection's buffered reader: a
// Content-Length body (remaining counts down) or a chunked one. One body
// value per connection is reused for every request.
type body struct {
	c         *conn
	br        *bufio.Reader
	remaining int64 // of a Content-Length body, or of the current chunk
	chunked   bool
	done      bool  // the final chunk and trailer were read
	read      int64 // bytes handed to the handler
	limit     int64
	err       error
}

func (b *body) reset(c *conn, h *head, limit int64) {
	*b = body{c: c, br: c.br, limit: limit, chunked: h.chunked}
	if !h.chunked {
		b.remaining = max(h.contentLength, 0)
		b.done = b.remaining == 0
	}
}

// Read reads the body. The first Read of a request that asked for
// "Expect: 100-continue" sends the interim answer first.
func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := b.c.sendContinue(); err != nil {
		b.err = err
		return 0, err
	}
	if b.chunked && b.remaining == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	b.read += int64(n)
	if b.limit > 0 && b.read > b.limit {
		b.err = ErrBodyTooLarge
		return n, b.err
	}
	if b.chunked && b.remaining == 0 && n > 0 {
		if err := b.chunkEnd(); err != nil {
			b.err = err
			return n, err
		}
	}
	if !b.chunked && b.remaining == 0 {
		b.done = true
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	return n, nil
}

// Close does nothing: the server drains or drops what the handler left.
func (b *body) Close() error { return nil }

// nextChunk reads a chunk-size line; for the last chunk it also reads the
// trailer section up to its empty line.
func (b *body) nextChunk() error {
	line, err := readLine(b.br)
	if err != nil {
		return err
	}
	size, ok := parseChunkSize(line)
	if !ok {
		return errChunk
	}
	if size == 0 {
		for { // trailer fields are read and ignored
			line, err := readLine(b.br)
			if err != nil {
				return err
			}
			if len(line) == 0 {
				break
			}
		}
		b.done = true
		return nil
	}
	b.remaining = size
	return nil
}

// chunkEnd reads the CRLF after a chunk's data.
func (b *body) chunkEnd() error {
	line, err := readLine(b.br)
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errChunk
	}
	return nil
}

// maxChunkLine bounds a chunk-size or trailer line.
const maxChunkLine = 4096

// readLine reads one line of a chunked body without its line end. The
// slice is valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err == bufio.ErrBufferFull {
			return nil, errChunk
		}
		return nil, err
	}
	if len(line) > maxChunkLine {
		return nil, errChunk
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseChunkSize parses "HEX[;ext...]" (chunk extensions are ignored).
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if n >= 1<<59 {
			return 0, false // overflow
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, false
	}
	return n, true
}
