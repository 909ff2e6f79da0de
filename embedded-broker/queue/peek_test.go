package queue

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestPeekChangesNothing browses a queue with a received message and
// checks states, paging, copies, and that receiving afterwards sees the
// same counts as without the browse.
func TestPeekChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "q"})
		mustSend(t, q, SendInput{Body: []byte("a"), Attributes: []Attribute{{Name: "k", DataType: "String", Value: []byte("v")}}})
		sendBodies(t, q, "b", "c")
		got := receive(t, q, 1, time.Minute) // "a" in flight
		if len(got) != 1 {
			t.Fatal("receive")
		}
		first, more := q.Peek(0, 2)
		if len(first) != 2 || !more || string(first[0].Body) != "a" || first[0].State != "in_flight" || first[0].ReceiveCount != 1 {
			t.Fatalf("first page %+v more %v", first, more)
		}
		if first[0].Attributes[0].Name != "k" || string(first[0].Attributes[0].Value) != "v" {
			t.Fatalf("attributes %+v", first[0].Attributes)
		}
		first[1].Body[0] = 'X' // a copy: the queue must not change
		rest, more := q.Peek(first[1].Seq, 10)
		if len(rest) != 1 || more || string(rest[0].Body) != "c" || rest[0].State != "visible" {
			t.Fatalf("second page %+v", rest)
		}
		wantStats(t, q, 2, 1, 0)
		if oldest := q.Oldest(); oldest.IsZero() || !oldest.Equal(first[0].SentAt) {
			t.Fatalf("Oldest %v, first sent %v", oldest, first[0].SentAt)
		}
		again := receive(t, q, 10, time.Minute)
		if len(again) != 2 || string(again[0].Body) != "b" || again[0].ReceiveCount != 1 {
			t.Fatalf("after peek, receive got %+v", again)
		}
	})
}

func TestRedriveMatchingSelectsAndReportsProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		a := mustCreate(t, m, Config{Name: "a"})
		sendBodies(t, dlq, "keep-1", "move-1", "keep-2", "move-2", "move-3")
		var progress []int
		n, err := m.RedriveMatching(context.Background(), "dlq", "a", 0, 0,
			func(p PeekedMessage) bool { return string(p.Body[:4]) == "move" },
			func(moved int) { progress = append(progress, moved) })
		if err != nil || n != 3 {
			t.Fatalf("moved %d, %v", n, err)
		}
		if len(progress) == 0 || progress[len(progress)-1] != 3 {
			t.Fatalf("progress %v", progress)
		}
		left, _ := dlq.Peek(0, 10)
		if len(left) != 2 || string(left[0].Body) != "keep-1" || string(left[1].Body) != "keep-2" {
			t.Fatalf("left in dlq %+v", left)
		}
		moved := receive(t, a, 10, time.Minute)
		if len(moved) != 3 {
			t.Fatalf("target has %d", len(moved))
		}
	})
}

func TestHandleMatchingDeletesOnlyWhatWasHandled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "dlq"})
		sendBodies(t, q, "a-ok", "b-skip", "c-fail", "d-ok", "e-ok")
		var seen []string
		done, failed, err := m.HandleMatching(context.Background(), "dlq", 0, 2,
			func(p PeekedMessage) bool { return p.Body[0] != 'b' },
			func(p PeekedMessage) error {
				seen = append(seen, string(p.Body))
				if p.Body[0] == 'c' {
					return errors.New("target down")
				}
				return nil
			}, nil)
		if err != nil || done != 3 || failed != 1 {
			t.Fatalf("done %d failed %d err %v", done, failed, err)
		}
		if len(seen) != 4 {
			t.Fatalf("handled %v: each matching message once", seen)
		}
		left, _ := q.Peek(0, 10)
		if len(left) != 2 || string(left[0].Body) != "b-skip" || string(left[1].Body) != "c-fail" || left[1].State != "visible" {
			t.Fatalf("left %+v", left)
		}
	})
}
