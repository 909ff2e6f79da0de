package amqpapi

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// outbox is a connection's outgoing byte stream. Every goroutine of a
// connection (its reader, channel workers, consumers) appends whole
// encoded frames under mu; one writer goroutine swaps the buffer out and
// writes it to the socket. Frames appended together are never interleaved
// with another writer's, and appending never blocks on the network, so no
// lock is ever held across a socket write.
//
// Boundedness: consumers wait for room (waitRoom) before taking messages
// from a queue, so deliveries stop when the client stops reading; the
// other frames (confirms, method replies) are bounded by the commands that
// caused them, which are bounded by the channel inboxes.
type outbox struct {
	mu      sync.Mutex
	buf     []byte
	closed  bool
	room    chan struct{} // closed and replaced when the writer takes the buffer
	kickCh  chan struct{} // capacity 1: wakes the writer
	highLen int
}

func newOutbox(high int) *outbox {
	return &outbox{room: make(chan struct{}), kickCh: make(chan struct{}, 1), highLen: high}
}

// write appends frames built by add and wakes the writer. It reports
// false when the outbox is closed (the frames are dropped).
func (o *outbox) write(add func([]byte) []byte) bool {
	if !o.writeNoKick(add) {
		return false
	}
	o.kick()
	return true
}

// writeNoKick appends without waking the writer, for callers holding a
// lock of their own (a channel's), who call kick after releasing it.
func (o *outbox) writeNoKick(add func([]byte) []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.buf = add(o.buf)
	return true
}

// kick wakes the writer; the channel has room for one signal, so it never
// blocks.
func (o *outbox) kick() {
	select {
	case o.kickCh <- struct{}{}:
	default:
	}
}

// waitRoom blocks until the buffer is below its high mark, the outbox is
// closed (false) or ctx ends (false).
func (o *outbox) waitRoom(ctx context.Context) bool {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return false
		}
		if len(o.buf) < o.highLen {
			o.mu.Unlock()
			return true
		}
		room := o.room
		o.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
	}
}

// take swaps the pending bytes for spare (emptied) and signals room.
func (o *outbox) take(spare []byte) []byte {
	o.mu.Lock()
	out := o.buf
	o.buf = spare[:0]
	room := o.room
	o.room = make(chan struct{})
	o.mu.Unlock()
	close(room)
	return out
}

// close stops intake; the writer still flushes what was appended.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.kick()
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// runWriter is the connection's only socket writer. It writes whatever was
// appended, sends a heartbeat when nothing else was written for a
// heartbeat interval, and returns once the outbox is closed and drained,
// or on a write error (reported through onError).
func (o *outbox) runWriter(nc net.Conn, heartbeat func() time.Duration, onError func(error)) {
	w := bufio.NewWriterSize(nc, 64<<10)
	var spare []byte
	lastWrite := time.Now()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-o.kickCh:
		case <-ticker.C:
			if hb := heartbeat(); hb > 0 && time.Since(lastWrite) >= hb/2 {
				o.write(wire.AppendHeartbeat)
			}
			continue
		}
		data := o.take(spare)
		if len(data) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.Write(data); err == nil {
				err = w.Flush()
				if err != nil {
					onError(err)
					return
				}
			} else {
				onError(err)
				return
			}
			lastWrite = time.Now()
		}
		if cap(data) <= maxSpareBytes {
			spare = data
		}
		if o.isClosed() {
			o.mu.Lock()
			empty := len(o.buf) == 0
			o.mu.Unlock()
			if empty {
				return
			}
			o.kick()
		}
	}
}

const (
	// writeTimeout bounds one socket write: a client that stops reading
	// for this long is disconnected rather than holding memory.
	writeTimeout = 60 * time.Second
	// maxSpareBytes: a buffer grown past this by a burst is not kept.
	maxSpareBytes = 4 << 20
)
