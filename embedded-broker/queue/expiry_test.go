package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

func attrValue(msg Message, name string) (string, bool) {
	for _, a := range msg.Attributes {
		if a.Name == name {
			return string(a.Value), true
		}
	}
	return "", false
}

// TestTTLLowerWins: the queue's message_ttl and a message's TTL, the lower
// of the two applies (as RabbitMQ), measured from when the message became
// visible; an expired message is never delivered and, without a DLQ, is
// dropped and counted.
func TestTTLLowerWins(t *testing.T) {
	tests := []struct {
		name     string
		queueTTL time.Duration
		in       SendInput
		want     time.Duration // the message is receivable before this, not at it
	}{
		{name: "queue TTL", queueTTL: 10 * time.Second, in: SendInput{Body: []byte("x")}, want: 10 * time.Second},
		{name: "message TTL", in: SendInput{Body: []byte("x"), TTL: 4 * time.Second}, want: 4 * time.Second},
		{name: "message TTL lower", queueTTL: 10 * time.Second, in: SendInput{Body: []byte("x"), TTL: 3 * time.Second}, want: 3 * time.Second},
		{name: "queue TTL lower", queueTTL: 2 * time.Second, in: SendInput{Body: []byte("x"), TTL: time.Hour}, want: 2 * time.Second},
		{name: "from the end of a delay", in: SendInput{Body: []byte("x"), TTL: 5 * time.Second, Delay: time.Hour, HasDelay: true}, want: time.Hour + 5*time.Second},
		{name: "below the minimum", in: SendInput{Body: []byte("x"), TTL: time.Nanosecond}, want: MinTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, receiveAt := range []time.Duration{tc.want - time.Nanosecond, tc.want} {
				synctest.Test(t, func(t *testing.T) {
					m := openMem(t, nil, "always")
					defer m.Close()
					q := mustCreate(t, m, Config{Name: "t", MessageTTL: tc.queueTTL})
					mustSend(t, q, tc.in)
					time.Sleep(receiveAt)
					got := receive(t, q, 1, -1)
					if expired := receiveAt >= tc.want; expired != (len(got) == 0) {
						t.Fatalf("at %v received %d messages; TTL ends at %v", receiveAt, len(got), tc.want)
					}
					if len(got) == 1 {
						if want := got[0].SentAt.Add(tc.want); !got[0].ExpiresAt.Equal(want) {
							t.Fatalf("ExpiresAt = %v, want %v", got[0].ExpiresAt, want)
						}
						return
					}
					if st := q.Stats(); st.ExpiredDropped != 1 || st.Visible+st.InFlight+st.Delayed != 0 {
						t.Fatalf("stats after expiry = %+v", st)
					}
				})
			}
		})
	}
}

// TestExpiryDeadLetters: with a dead-letter queue, an expired message moves
// there with bridge-error: expired, by the flusher's sweep alone (nobody
// receives from the source: RabbitMQ's TTL + dead-letter delay pattern),
// keeps its id, body, attributes and priority, and does not expire again.
func TestExpiryDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		q := mustCreate(t, m, Config{Name: "src", MessageTTL: 30 * time.Second, DeadLetterQueue: "dlq", MaxReceiveCount: 5, MaxPriority: 3})
		res := mustSend(t, q, SendInput{Body: []byte("late"), Priority: 2, Attributes: []Attribute{
			{Name: "a", DataType: "String", Value: []byte("1")}, {Name: "z", DataType: "String", Value: []byte("2")}}})
		sendBodies(t, q, "fresh")
		time.Sleep(30 * time.Second)
		synctest.Wait() // the flusher's sweep at its next tick
		time.Sleep(DefaultFsyncInterval)
		synctest.Wait()
		wantStats(t, dlq, 2, 0, 0)
		wantStats(t, q, 0, 0, 0)
		if st := q.Stats(); st.ExpiredDeadLettered != 2 || st.ExpiredDropped != 0 {
			t.Fatalf("source stats = %+v", st)
		}
		time.Sleep(time.Hour) // no TTL in the DLQ: the copies stay
		got := receive(t, dlq, 10, -1)
		if len(got) != 2 {
			t.Fatalf("dead letters = %v", bodies(got))
		}
		slices.SortFunc(got, func(a, b Message) int { return a.SentAt.Compare(b.SentAt) })
		late := got[0]
		if reason, _ := attrValue(late, AttributeError); reason != ErrorExpired {
			t.Fatalf("bridge-error = %q", reason)
		}
		if late.MessageID != res[0].MessageID || string(late.Body) != "late" || late.Priority != 2 ||
			late.DeadLetterSource != "src" || !late.ExpiresAt.IsZero() {
			t.Fatalf("dead letter = %+v", late)
		}
		names := make([]string, len(late.Attributes))
		for i, a := range late.Attributes {
			names[i] = a.Name
		}
		if !slices.Equal(names, []string{"a", AttributeError, "z"}) {
			t.Fatalf("attributes = %v, want sorted with bridge-error added", names)
		}
	})
}

// TestExpiryInFlight: a message in flight does not expire (RabbitMQ does
// not expire unacknowledged messages); when its visibility timeout ends
// after its TTL, it expires at once instead of being delivered again.
func TestExpiryInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		q := mustCreate(t, m, Config{Name: "w", MessageTTL: 10 * time.Second, DeadLetterQueue: "dlq", MaxReceiveCount: 9})
		sendBodies(t, q, "slow")
		got := receive(t, q, 1, time.Minute)
		time.Sleep(30 * time.Second)
		wantStats(t, q, 0, 1, 0) // still in flight past its TTL
		// Its consumer may still extend it, as SQS allows.
		mustDo(t, q.ChangeVisibility(context.Background(), got[0].ReceiptHandle, time.Minute))
		time.Sleep(time.Minute)
		if again := receive(t, q, 1, -1); len(again) != 0 {
			t.Fatalf("expired message delivered again: %v", bodies(again))
		}
		synctest.Wait()
		wantStats(t, q, 0, 0, 0)
		wantStats(t, dlq, 1, 0, 0)
	})
}

// TestExpiryCheckedAtReceive: even when no sweep saw an expiry (its heap
// entry is gone), Receive never delivers an expired message.
func TestExpiryCheckedAtReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "r"})
		mustSend(t, q, SendInput{Body: []byte("x"), TTL: time.Second})
		sendBodies(t, q, "y")
		q.mu.Lock()
		q.expiries = nil // as if every sweep had missed it
		q.mu.Unlock()
		time.Sleep(2 * time.Second)
		if got := bodies(receive(t, q, 10, -1)); !slices.Equal(got, []string{"y"}) {
			t.Fatalf("received %v, want only y", got)
		}
		if st := q.Stats(); st.ExpiredDropped != 1 {
			t.Fatalf("expired dropped = %d", st.ExpiredDropped)
		}
	})
}

// TestExpiryFIFO: an expired message leaves its group; the group's next
// message is delivered in order.
func TestExpiryFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "f.fifo", FIFO: true, ContentBasedDeduplication: true})
		mustSend(t, q, SendInput{Body: []byte("a"), GroupID: "g", TTL: time.Second},
			SendInput{Body: []byte("b"), GroupID: "g"}, SendInput{Body: []byte("c"), GroupID: "g", TTL: time.Second},
			SendInput{Body: []byte("d"), GroupID: "g"})
		time.Sleep(2 * time.Second)
		if got := bodies(receive(t, q, 10, -1)); !slices.Equal(got, []string{"b", "d"}) {
			t.Fatalf("received %v, want b, d", got)
		}
		mustDo(t, checkInvariants(q))
	})
}

// TestExpiryDurable: a TTL survives restart and crash: a message that
// expired while bridge was down is not delivered after it starts, and goes
// to the dead-letter queue.
func TestExpiryDurable(t *testing.T) {
	for _, policy := range []string{"always", "interval"} {
		t.Run(policy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fs := vfs.NewMem()
				m := openMem(t, fs, policy)
				mustCreate(t, m, Config{Name: "dlq"})
				q := mustCreate(t, m, Config{Name: "q", DeadLetterQueue: "dlq", MaxReceiveCount: 3})
				mustSend(t, q, SendInput{Body: []byte("short"), TTL: time.Minute}, SendInput{Body: []byte("long"), TTL: time.Hour},
					SendInput{Body: []byte("scheduled"), Delay: 2 * time.Hour, HasDelay: true})
				// kill -9: what was written survives (fsync=always: synced).
				crashed := fs.CrashClone(vfs.CrashOptions{KeepAllUnsynced: policy != "always"})
				mustDo(t, m.Close())
				time.Sleep(2 * time.Minute)
				m2 := openMem(t, crashed, policy)
				defer m2.Close()
				q2, _ := m2.Get("q")
				dlq2, _ := m2.Get("dlq")
				if got := bodies(receive(t, q2, 10, time.Hour)); !slices.Equal(got, []string{"long"}) {
					t.Fatalf("after restart received %v, want long", got)
				}
				time.Sleep(2 * time.Hour)
				if got := bodies(receive(t, q2, 10, -1)); !slices.Equal(got, []string{"scheduled"}) {
					t.Fatalf("after the delay received %v, want scheduled", got)
				}
				// long was received and not deleted; its TTL ended while
				// it was in flight, so it expired when it came back.
				synctest.Wait()
				dl := bodies(receive(t, dlq2, 10, -1))
				slices.Sort(dl)
				if !slices.Equal(dl, []string{"long", "short"}) {
					t.Fatalf("dead letters = %v, want long and short", dl)
				}
			})
		})
	}
}

func TestTTLValidation(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	for _, cfg := range []Config{
		{Name: "neg", MessageTTL: -time.Second},
		{Name: "tiny", MessageTTL: time.Microsecond},
		{Name: "past-retention", MessageTTL: 5 * 24 * time.Hour},
		{Name: "idle-short", IdleTimeout: time.Millisecond},
	} {
		if _, err := m.Create(cfg); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Create(%+v) = %v, want ErrInvalidParameter", cfg, err)
		}
	}
	q := mustCreate(t, m, Config{Name: "ok"})
	res, err := q.Send(context.Background(), []SendInput{{Body: []byte("x"), TTL: -time.Second}})
	mustDo(t, err)
	if !errors.Is(res[0].Err, ErrInvalidParameter) {
		t.Fatalf("negative TTL: %v", res[0].Err)
	}
}

// TestExpiryHeapBounded: deleted messages do not pin expiry entries
// without bound.
func TestExpiryHeapBounded(t *testing.T) {
	m := openMem(t, nil, "never")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "h", MessageTTL: time.Hour})
	ctx := context.Background()
	for i := range 500 {
		sendBodies(t, q, fmtBodies(fmt.Sprint("b", i), 10)...)
		msgs := receive(t, q, 10, time.Minute)
		handles := make([]string, len(msgs))
		for j, msg := range msgs {
			handles[j] = msg.ReceiptHandle
		}
		for _, err := range q.DeleteBatch(ctx, handles) {
			mustDo(t, err)
		}
	}
	q.mu.Lock()
	n := len(q.expiries)
	q.mu.Unlock()
	if n > 2*1024 {
		t.Fatalf("%d expiry entries for an empty queue", n)
	}
}
