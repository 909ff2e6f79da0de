package sse

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// frame is one published message, encoded once for every subscriber.
type frame struct {
	id    uint64
	event string
	data  []byte // the whole encoded frame
}

// subBuffer is how many frames a subscriber may have pending before it
// skips to the newest state; a tick's messages fit with room to spare.
const subBuffer = 16

// Hub fans messages out to subscribers. It is safe for concurrent use.
// Lock order: Hub.mu only; no send on a channel happens under it.
type Hub struct {
	keep int

	mu     sync.Mutex
	nextID uint64
	recent []frame // the last keep frames, oldest first
	subs   map[*Sub]struct{}
}

// NewHub returns a hub that keeps the last keep messages for resuming.
func NewHub(keep int) *Hub {
	if keep < 1 {
		keep = 1
	}
	return &Hub{keep: keep, nextID: 1, subs: map[*Sub]struct{}{}}
}

// Sub is one subscriber.
type Sub struct {
	ch     chan frame
	mu     sync.Mutex
	missed bool // a frame was dropped; guarded by mu
}

// Publish sends a message to every subscriber and returns its id. It does
// not block: a subscriber whose buffer is full is marked as having missed
// frames and catches up from the newest ones.
func (h *Hub) Publish(event string, data []byte) uint64 {
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	f := frame{id: id, event: event, data: AppendFrame(nil, strconv.FormatUint(id, 10), event, data)}
	h.recent = append(h.recent, f)
	if len(h.recent) > h.keep {
		h.recent = append(h.recent[:0], h.recent[len(h.recent)-h.keep:]...)
	}
	subs := make([]*Sub, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- f:
		default:
			s.mu.Lock()
			s.missed = true
			s.mu.Unlock()
		}
	}
	return id
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// subscribe registers a subscriber and returns the frames it should get
// first: with a known last id, every kept frame after it; when that id is
// no longer kept (or none was given), the newest frame of each event name.
func (h *Hub) subscribe(lastID string) (*Sub, []frame) {
	s := &Sub{ch: make(chan frame, subBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	if last, err := strconv.ParseUint(lastID, 10, 64); err == nil && last < h.nextID {
		if len(h.recent) > 0 && last+1 >= h.recent[0].id {
			var out []frame
			for _, f := range h.recent {
				if f.id > last {
					out = append(out, f)
				}
			}
			return s, out
		}
	}
	return s, h.latestLocked(0)
}

// latestLocked returns the newest kept frame of each event name with an id
// above after, in id order.
func (h *Hub) latestLocked(after uint64) []frame {
	seen := map[string]bool{}
	var out []frame
	for i := len(h.recent) - 1; i >= 0; i-- {
		f := h.recent[i]
		if f.id <= after || seen[f.event] {
			continue
		}
		seen[f.event] = true
		out = append(out, f)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (h *Hub) unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Serve streams the hub to one client until the request's context ends.
// It resumes after Last-Event-ID, writes a keepalive comment when nothing
// was sent for keepalive, and after a skip sends the newest state.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, keepalive time.Duration) error {
	return h.ServeContext(r.Context(), w, r, keepalive)
}

// ServeContext is Serve bounded by ctx instead of the request's context
// (a server shutting down ends its streams).
func (h *Hub) ServeContext(ctx context.Context, w http.ResponseWriter, r *http.Request, keepalive time.Duration) error {
	sub, backlog := h.subscribe(LastEventID(r))
	defer h.unsubscribe(sub)
	sw, err := Start(w, 2*time.Second)
	if err != nil {
		return err
	}
	var sent uint64
	for _, f := range backlog {
		if err := sw.Raw(f.data); err != nil {
			return err
		}
		sent = f.id
	}
	idle := time.NewTimer(keepalive)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
			if err := sw.Comment("keepalive"); err != nil {
				return err
			}
			idle.Reset(keepalive)
		case f := <-sub.ch:
			if f.id <= sent {
				continue // already sent as backlog
			}
			frames := []frame{f}
			if sub.takeMissed() {
				frames = h.catchUp(sub, sent)
				if err := sw.Comment("skipped to the newest state"); err != nil {
					return err
				}
			}
			for _, f := range frames {
				if f.id <= sent {
					continue
				}
				if err := sw.Raw(f.data); err != nil {
					return err
				}
				sent = f.id
			}
			idle.Reset(keepalive)
		}
	}
}

// catchUp drains a subscriber that missed frames and returns the newest
// kept frame of each event name after sent.
func (h *Hub) catchUp(sub *Sub, sent uint64) []frame {
	for {
		select {
		case <-sub.ch:
			continue
		default:
		}
		break
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latestLocked(sent)
}

func (s *Sub) takeMissed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.missed
	s.missed = false
	return m
}
