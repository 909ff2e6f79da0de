package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestConfigValidation(t *testing.T) {
	long := string(make([]byte, 81))
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Name: "a-b_C9"}, true},
		{"fifo", Config{Name: "a.fifo", FIFO: true, ContentBasedDeduplication: true}, true},
		{"fifo name without flag", Config{Name: "a.fifo"}, false},
		{"flag without fifo name", Config{Name: "a", FIFO: true}, false},
		{"content dedup on standard", Config{Name: "a", ContentBasedDeduplication: true}, false},
		{"empty name", Config{}, false},
		{"bad character", Config{Name: "a/b"}, false},
		{"too long", Config{Name: long}, false},
		{"only suffix", Config{Name: ".fifo", FIFO: true}, false},
		{"visibility too long", Config{Name: "a", VisibilityTimeout: 13 * time.Hour}, false},
		{"explicit zero visibility", Config{Name: "a", VisibilityTimeout: -1}, true},
		{"delay too long", Config{Name: "a", Delay: 16 * time.Minute}, false},
		{"retention too short", Config{Name: "a", Retention: 59 * time.Second}, false},
		{"retention too long", Config{Name: "a", Retention: 15 * 24 * time.Hour}, false},
		{"size too small", Config{Name: "a", MaxMessageSize: 1023}, false},
		{"size too large", Config{Name: "a", MaxMessageSize: 1048577}, false},
		{"wait too long", Config{Name: "a", ReceiveWait: 21 * time.Second}, false},
		{"dlq", Config{Name: "a", DeadLetterQueue: "d", MaxReceiveCount: 1000}, true},
		{"dlq without count", Config{Name: "a", DeadLetterQueue: "d"}, false},
		{"dlq count too high", Config{Name: "a", DeadLetterQueue: "d", MaxReceiveCount: 1001}, false},
		{"count without dlq", Config{Name: "a", MaxReceiveCount: 3}, false},
		{"self dlq", Config{Name: "a", DeadLetterQueue: "a", MaxReceiveCount: 3}, false},
		{"fifo with standard dlq", Config{Name: "a.fifo", FIFO: true, DeadLetterQueue: "d", MaxReceiveCount: 3}, false},
	}
	m := openMem(t, nil, "never")
	defer m.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := m.Create(tc.cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("Create = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidParameter) {
					t.Fatalf("err %v does not wrap ErrInvalidParameter", err)
				}
				return
			}
			if err := m.Delete(q.Name()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCreateGetDeleteList(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "orders"})
	if cfg := q.Config(); cfg.VisibilityTimeout != DefaultVisibilityTimeout || cfg.Retention != DefaultRetention || cfg.MaxMessageSize != DefaultMaxMessageSize {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	same, err := m.Create(Config{Name: "orders", VisibilityTimeout: 30 * time.Second})
	if err != nil || same != q {
		t.Fatalf("Create with the same attributes = %v, %v", same, err)
	}
	if _, err := m.Create(Config{Name: "orders", VisibilityTimeout: time.Minute}); !errors.Is(err, ErrQueueExists) {
		t.Fatalf("Create with other attributes: %v", err)
	}
	mustCreate(t, m, Config{Name: "orders-eu"})
	mustCreate(t, m, Config{Name: "audit"})
	if got := m.List("orders"); !slices.Equal(got, []string{"orders", "orders-eu"}) {
		t.Fatalf("List(orders) = %v", got)
	}
	if got := m.List(""); !slices.Equal(got, []string{"audit", "orders", "orders-eu"}) {
		t.Fatalf("List() = %v", got)
	}
	sendBodies(t, q, "x")
	msg := receive(t, q, 1, time.Minute)[0]
	if err := m.Delete("orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("orders"); !errors.Is(err, ErrNoSuchQueue) {
		t.Fatalf("Get after delete: %v", err)
	}
	if err := m.Delete("orders"); !errors.Is(err, ErrNoSuchQueue) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := q.Send(context.Background(), []SendInput{{Body: []byte("x")}}); !errors.Is(err, ErrNoSuchQueue) {
		t.Fatalf("send to a deleted queue: %v", err)
	}
	// A queue recreated under the same name is new: empty, and old
	// receipts are not its receipts.
	q2 := mustCreate(t, m, Config{Name: "orders"})
	wantStats(t, q2, 0, 0, 0)
	if err := q2.Delete(context.Background(), msg.ReceiptHandle); !errors.Is(err, ErrReceiptInvalid) {
		t.Fatalf("old receipt on the new queue: %v", err)
	}
}

func TestSetConfig(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "s"})
	if err := q.SetConfig(Config{Name: "s", FIFO: true}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("changing FIFO: %v", err)
	}
	if err := q.SetConfig(Config{Name: "s", Delay: time.Hour}); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("bad delay: %v", err)
	}
	created := q.Stats().CreatedAt
	if err := q.SetConfig(Config{Name: "s", VisibilityTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if q.Config().VisibilityTimeout != time.Minute || q.Stats().ModifiedAt.Before(created) {
		t.Fatalf("after SetConfig: %+v %+v", q.Config(), q.Stats())
	}
}

func TestDeleteQueueWakesReceivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "gone"})
		done := make(chan error, 1)
		go func() {
			_, err := q.Receive(context.Background(), 1, -1, 20*time.Second)
			done <- err
		}()
		synctest.Wait()
		if err := m.Delete("gone"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrNoSuchQueue) {
			t.Fatalf("receiver got %v", err)
		}
	})
}

func TestReceiveValidation(t *testing.T) {
	m := openMem(t, nil, "never")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "v"})
	tests := []struct {
		name       string
		max        int
		visibility time.Duration
		wait       time.Duration
	}{
		{"zero max", 0, -1, 0},
		{"eleven", 11, -1, 0},
		{"visibility too long", 1, 13 * time.Hour, 0},
		{"wait too long", 1, -1, 21 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := q.Receive(context.Background(), tc.max, tc.visibility, tc.wait); !errors.Is(err, ErrInvalidParameter) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestConcurrentSendReceiveDelete runs senders, long-polling receivers and
// deleters at once (run it with -race): every message is received and
// deleted, and none is deleted twice.
func TestConcurrentSendReceiveDelete(t *testing.T) {
	for _, cfg := range []Config{{Name: "std"}, {Name: "f.fifo", FIFO: true, ContentBasedDeduplication: true}} {
		t.Run(cfg.Name, func(t *testing.T) {
			t.Parallel()
			m := openMem(t, nil, "interval")
			defer m.Close()
			q := mustCreate(t, m, cfg)
			const senders, perSender = 4, 500
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var seen sync.Map
			var received atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for s := range senders {
				wg.Go(func() {
					for i := 0; i < perSender; i += 10 {
						in := make([]SendInput, 10)
						for j := range in {
							in[j] = SendInput{Body: fmt.Appendf(nil, "%d-%d", s, i+j), GroupID: fmt.Sprint("g", (i+j)%7)}.forQueue(cfg)
						}
						if _, err := q.Send(ctx, in); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			var receivers sync.WaitGroup
			for range 3 {
				receivers.Go(func() {
					for ctx.Err() == nil {
						msgs, err := q.Receive(ctx, 10, time.Minute, time.Second)
						if err != nil {
							errs <- err
							return
						}
						handles := make([]string, len(msgs))
						for i, msg := range msgs {
							if _, dup := seen.LoadOrStore(string(msg.Body), true); dup {
								errs <- fmt.Errorf("%s received twice", msg.Body)
							}
							handles[i] = msg.ReceiptHandle
						}
						for _, err := range q.DeleteBatch(ctx, handles) {
							if err != nil && ctx.Err() == nil {
								errs <- err
							}
						}
						if received.Add(int64(len(msgs))) == senders*perSender {
							cancel()
						}
					}
				})
			}
			wg.Wait()
			waitFor(t, 20*time.Second, func() error {
				if n := received.Load(); n < senders*perSender {
					return fmt.Errorf("received %d of %d", n, senders*perSender)
				}
				return nil
			})
			cancel()
			receivers.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			wantStats(t, q, 0, 0, 0)
		})
	}
}
