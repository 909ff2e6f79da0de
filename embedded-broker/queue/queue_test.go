package queue

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

func TestVisibilityExpiryAndReceiveCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "work", VisibilityTimeout: 30 * time.Second})
		sendBodies(t, q, "a")
		first := receive(t, q, 10, -1)
		if len(first) != 1 || first[0].ReceiveCount != 1 || first[0].FirstReceivedAt.IsZero() {
			t.Fatalf("first receive = %+v", first)
		}
		wantStats(t, q, 0, 1, 0)
		time.Sleep(29 * time.Second)
		if got := receive(t, q, 10, -1); len(got) != 0 {
			t.Fatalf("received %v before the visibility timeout", bodies(got))
		}
		time.Sleep(time.Second)
		wantStats(t, q, 1, 0, 0)
		again := receive(t, q, 10, 5*time.Second)
		if len(again) != 1 || again[0].ReceiveCount != 2 || again[0].MessageID != first[0].MessageID {
			t.Fatalf("second receive = %+v", again)
		}
		if !again[0].FirstReceivedAt.Equal(first[0].FirstReceivedAt) {
			t.Fatalf("FirstReceivedAt moved from %v to %v", first[0].FirstReceivedAt, again[0].FirstReceivedAt)
		}
		if again[0].ReceiptHandle == first[0].ReceiptHandle {
			t.Fatal("a new delivery reused the receipt handle")
		}
		if again[0].MD5OfBody != "0cc175b9c0f1b6a831c399e269772661" {
			t.Fatalf("MD5OfBody = %s", again[0].MD5OfBody)
		}
	})
}

func TestChangeVisibility(t *testing.T) {
	tests := []struct {
		name        string
		change      time.Duration
		handle      func(Message) string
		wantErr     error
		visibleAt   time.Duration // after the change, when the message is receivable again
		deleteFirst bool
	}{
		{name: "zero makes it visible now", change: 0, visibleAt: 0},
		{name: "extends", change: 90 * time.Second, visibleAt: 90 * time.Second},
		{name: "shortens", change: 5 * time.Second, visibleAt: 5 * time.Second},
		{name: "malformed handle", change: 0, handle: func(Message) string { return "nope" }, wantErr: ErrReceiptInvalid},
		{name: "handle of another queue", change: 0, handle: func(msg Message) string {
			r, _ := decodeReceipt(msg.ReceiptHandle)
			r.queueID++
			return r.encode()
		}, wantErr: ErrReceiptInvalid},
		{name: "deleted message", change: 0, deleteFirst: true, wantErr: ErrMessageNotInflight},
		{name: "out of range", change: 13 * time.Hour, wantErr: ErrInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := openMem(t, nil, "always")
				defer m.Close()
				q := mustCreate(t, m, Config{Name: "cv"})
				sendBodies(t, q, "x")
				msg := receive(t, q, 1, 30*time.Second)[0]
				if tc.deleteFirst {
					if err := q.Delete(context.Background(), msg.ReceiptHandle); err != nil {
						t.Fatal(err)
					}
				}
				handle := msg.ReceiptHandle
				if tc.handle != nil {
					handle = tc.handle(msg)
				}
				err := q.ChangeVisibility(context.Background(), handle, tc.change)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("err = %v, want %v", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if tc.visibleAt > 0 {
					time.Sleep(tc.visibleAt - time.Nanosecond)
					if got := receive(t, q, 1, -1); len(got) != 0 {
						t.Fatal("visible before the new timeout")
					}
					time.Sleep(time.Nanosecond)
				}
				if got := receive(t, q, 1, -1); len(got) != 1 || got[0].ReceiveCount != 2 {
					t.Fatalf("after the timeout: %+v", got)
				}
			})
		})
	}
}

func TestStaleReceiptCannotTouchLaterDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "stale"})
		sendBodies(t, q, "x")
		old := receive(t, q, 1, time.Second)[0]
		time.Sleep(time.Second)
		current := receive(t, q, 1, time.Minute)[0]
		if err := q.Delete(context.Background(), old.ReceiptHandle); err != nil {
			t.Fatalf("stale delete: %v, want a no-op success", err)
		}
		wantStats(t, q, 0, 1, 0)
		if err := q.ChangeVisibility(context.Background(), old.ReceiptHandle, 0); !errors.Is(err, ErrMessageNotInflight) {
			t.Fatalf("stale change visibility: %v", err)
		}
		if err := q.Delete(context.Background(), current.ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		wantStats(t, q, 0, 0, 0)
		// Deleting again, and with the stale handle, stays a no-op.
		for _, h := range []string{current.ReceiptHandle, old.ReceiptHandle} {
			if err := q.Delete(context.Background(), h); err != nil {
				t.Fatalf("delete of a deleted message: %v", err)
			}
		}
		if err := q.Delete(context.Background(), "garbage!"); !errors.Is(err, ErrReceiptInvalid) {
			t.Fatalf("malformed handle: %v", err)
		}
	})
}

func TestDeleteAfterExpiryWithLatestHandle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "late"})
		sendBodies(t, q, "x")
		msg := receive(t, q, 1, time.Second)[0]
		time.Sleep(2 * time.Second)
		// Nobody received it again: the slow worker's handle is still the
		// latest delivery, so its delete counts (as in SQS).
		if err := q.Delete(context.Background(), msg.ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		wantStats(t, q, 0, 0, 0)
		if got := receive(t, q, 1, -1); len(got) != 0 {
			t.Fatalf("deleted message came back: %v", bodies(got))
		}
	})
}

func TestDeadLetterAndRedrive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		q := mustCreate(t, m, Config{Name: "src", DeadLetterQueue: "dlq", MaxReceiveCount: 3})
		sent := sendBodies(t, q, "poison", "fine")
		for i := 1; i <= 3; i++ {
			got := receive(t, q, 10, time.Second)
			if len(got) != 2 {
				t.Fatalf("receive %d: %v", i, bodies(got))
			}
			time.Sleep(time.Second)
		}
		// The fourth receive would exceed MaxReceiveCount: both move.
		if got := receive(t, q, 10, time.Second); len(got) != 0 {
			t.Fatalf("receive past max returned %v", bodies(got))
		}
		wantStats(t, q, 0, 0, 0)
		dead := receive(t, dlq, 10, time.Second)
		if len(dead) != 2 {
			t.Fatalf("dlq holds %v", bodies(dead))
		}
		for _, d := range dead {
			if d.DeadLetterSource != "src" || d.ReceiveCount != 1 {
				t.Fatalf("dead letter %+v", d)
			}
			if d.MessageID != sent[0].MessageID && d.MessageID != sent[1].MessageID {
				t.Fatalf("dead letter got a new id %s", d.MessageID)
			}
		}
		if got := m.DeadLetterSources("dlq"); !slices.Equal(got, []string{"src"}) {
			t.Fatalf("DeadLetterSources = %v", got)
		}
		// In-flight dead letters are not redriven.
		if n, err := m.Redrive(context.Background(), "dlq", "", 0, 0); err != nil || n != 0 {
			t.Fatalf("redrive of in-flight = %d, %v", n, err)
		}
		time.Sleep(time.Second)
		start := time.Now()
		n, err := m.Redrive(context.Background(), "dlq", "", 0, 1)
		if err != nil || n != 2 {
			t.Fatalf("redrive = %d, %v", n, err)
		}
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Fatalf("2 messages at 1/s took %v, want 1s", elapsed)
		}
		wantStats(t, dlq, 0, 0, 0)
		back := receive(t, q, 10, time.Second)
		if len(back) != 2 || back[0].ReceiveCount != 1 || back[0].DeadLetterSource != "" {
			t.Fatalf("redriven = %+v", back)
		}
	})
}

func TestRedriveToDestAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		other := mustCreate(t, m, Config{Name: "other"})
		sendBodies(t, dlq, "a", "b", "c")
		n, err := m.Redrive(context.Background(), "dlq", "other", 2, 0)
		if err != nil || n != 2 {
			t.Fatalf("redrive = %d, %v", n, err)
		}
		wantStats(t, dlq, 1, 0, 0)
		wantStats(t, other, 2, 0, 0)
		// A message with no source queue (sent directly) stays put.
		if n, err := m.Redrive(context.Background(), "dlq", "", 0, 0); err != nil || n != 0 {
			t.Fatalf("redrive without source = %d, %v", n, err)
		}
		wantStats(t, dlq, 1, 0, 0)
		if _, err := m.Redrive(context.Background(), "nope", "", 0, 0); !errors.Is(err, ErrNoSuchQueue) {
			t.Fatalf("unknown dlq: %v", err)
		}
	})
}

func TestDelay(t *testing.T) {
	tests := []struct {
		name       string
		queueDelay time.Duration
		in         SendInput
		wantDelay  time.Duration
		wantErr    error
	}{
		{name: "queue delay", queueDelay: 10 * time.Second, in: SendInput{Body: []byte("x")}, wantDelay: 10 * time.Second},
		{name: "message delay overrides", queueDelay: 10 * time.Second, in: SendInput{Body: []byte("x"), Delay: 3 * time.Second, HasDelay: true}, wantDelay: 3 * time.Second},
		{name: "explicit zero overrides", queueDelay: 10 * time.Second, in: SendInput{Body: []byte("x"), HasDelay: true}, wantDelay: 0},
		{name: "no delay", in: SendInput{Body: []byte("x")}, wantDelay: 0},
		{name: "past SQS's 15 minutes", in: SendInput{Body: []byte("x"), Delay: 3 * time.Hour, HasDelay: true}, wantDelay: 3 * time.Hour},
		{name: "not below the retention", in: SendInput{Body: []byte("x"), Delay: DefaultRetention, HasDelay: true}, wantErr: ErrInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := openMem(t, nil, "always")
				defer m.Close()
				q := mustCreate(t, m, Config{Name: "d", Delay: tc.queueDelay})
				res, err := q.Send(context.Background(), []SendInput{tc.in})
				if err != nil {
					t.Fatal(err)
				}
				if tc.wantErr != nil {
					if !errors.Is(res[0].Err, tc.wantErr) {
						t.Fatalf("err = %v, want %v", res[0].Err, tc.wantErr)
					}
					return
				}
				if tc.wantDelay > 0 {
					wantStats(t, q, 0, 0, 1)
					time.Sleep(tc.wantDelay - time.Nanosecond)
					if got := receive(t, q, 1, -1); len(got) != 0 {
						t.Fatal("received before the delay ended")
					}
					time.Sleep(time.Nanosecond)
				}
				wantStats(t, q, 1, 0, 0)
				if got := receive(t, q, 1, -1); len(got) != 1 {
					t.Fatal("not received after the delay")
				}
			})
		})
	}
}

func TestSendValidation(t *testing.T) {
	big := make([]byte, 2000)
	tests := []struct {
		name    string
		cfg     Config
		in      SendInput
		wantErr error
	}{
		{name: "too large body", cfg: Config{Name: "s", MaxMessageSize: 1024}, in: SendInput{Body: big}, wantErr: ErrMessageTooLarge},
		{name: "attributes count toward size", cfg: Config{Name: "s", MaxMessageSize: 1024}, in: SendInput{Body: big[:1000], Attributes: []Attribute{{Name: "n", DataType: "String", Value: big[:20]}}}, wantErr: ErrMessageTooLarge},
		{name: "exactly the limit", cfg: Config{Name: "s", MaxMessageSize: 1024}, in: SendInput{Body: big[:1000], Attributes: []Attribute{{Name: "n", DataType: "String", Value: big[:17]}}}},
		{name: "empty body", cfg: Config{Name: "s"}, in: SendInput{}, wantErr: ErrInvalidParameter},
		{name: "system attributes past the record bound", cfg: Config{Name: "s"}, in: SendInput{Body: []byte("x"), SystemAttributes: []Attribute{{Name: "AWSTraceHeader", DataType: "String", Value: make([]byte, maxRecordLength)}}}, wantErr: ErrMessageTooLarge},
		{name: "dedup id on a standard queue", cfg: Config{Name: "s"}, in: SendInput{Body: []byte("x"), DedupID: "d"}, wantErr: ErrInvalidParameter},
		{name: "fifo without group", cfg: Config{Name: "s.fifo", FIFO: true, ContentBasedDeduplication: true}, in: SendInput{Body: []byte("x")}, wantErr: ErrInvalidParameter},
		{name: "fifo without dedup id", cfg: Config{Name: "s.fifo", FIFO: true}, in: SendInput{Body: []byte("x"), GroupID: "g"}, wantErr: ErrInvalidParameter},
		{name: "fifo per-message delay", cfg: Config{Name: "s.fifo", FIFO: true, ContentBasedDeduplication: true}, in: SendInput{Body: []byte("x"), GroupID: "g", Delay: time.Second, HasDelay: true}, wantErr: ErrInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openMem(t, nil, "never")
			defer m.Close()
			q := mustCreate(t, m, tc.cfg)
			// A bad entry fails alone: the good one beside it is sent.
			good := SendInput{Body: []byte("ok")}
			if tc.cfg.FIFO {
				good.GroupID, good.DedupID = "g", "ok"
			}
			res, err := q.Send(context.Background(), []SendInput{tc.in, good})
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(res[0].Err, tc.wantErr) || (tc.wantErr == nil && res[0].Err != nil) {
				t.Fatalf("err = %v, want %v", res[0].Err, tc.wantErr)
			}
			if res[1].Err != nil || res[1].MessageID == "" {
				t.Fatalf("good entry: %+v", res[1])
			}
		})
	}
}

func TestFIFOOrderGroupsAndHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "f.fifo", FIFO: true, ContentBasedDeduplication: true})
		var in []SendInput
		for i := range 6 {
			group := "a"
			if i%2 == 1 {
				group = "b"
			}
			in = append(in, SendInput{Body: []byte(group + string(rune('0'+i))), GroupID: group})
		}
		res := mustSend(t, q, in...)
		for i := 1; i < len(res); i++ {
			if res[i].SequenceNumber <= res[i-1].SequenceNumber {
				t.Fatalf("sequence numbers not increasing: %s then %s", res[i-1].SequenceNumber, res[i].SequenceNumber)
			}
		}
		first := receive(t, q, 2, time.Minute)
		if !slices.Equal(bodies(first), []string{"a0", "a2"}) {
			t.Fatalf("first receive = %v, want a0 a2 (group a in order)", bodies(first))
		}
		// Group a is held while a0 and a2 are in flight; b proceeds.
		second := receive(t, q, 10, time.Minute)
		if !slices.Equal(bodies(second), []string{"b1", "b3", "b5"}) {
			t.Fatalf("second receive = %v", bodies(second))
		}
		if got := receive(t, q, 10, time.Minute); len(got) != 0 {
			t.Fatalf("held groups yielded %v", bodies(got))
		}
		// Deleting a0 alone does not release a: a2 is still in flight.
		if err := q.Delete(context.Background(), first[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, q, 10, time.Minute); len(got) != 0 {
			t.Fatalf("group a released with a2 in flight: %v", bodies(got))
		}
		if err := q.Delete(context.Background(), first[1].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, q, 10, time.Minute); !slices.Equal(bodies(got), []string{"a4"}) {
			t.Fatalf("after deleting a's in-flight messages: %v", bodies(got))
		}
		// b's messages come back in order after their timeout.
		time.Sleep(time.Minute)
		if got := receive(t, q, 10, time.Minute); !slices.Equal(bodies(got), []string{"a4", "b1", "b3", "b5"}) {
			t.Fatalf("after expiry: %v", bodies(got))
		}
	})
}

func TestFIFODeduplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		byID := mustCreate(t, m, Config{Name: "id.fifo", FIFO: true})
		byContent := mustCreate(t, m, Config{Name: "content.fifo", FIFO: true, ContentBasedDeduplication: true})
		tests := []struct {
			name string
			q    *Queue
			a, b SendInput
		}{
			{"by id", byID, SendInput{Body: []byte("one"), GroupID: "g", DedupID: "d1"}, SendInput{Body: []byte("two"), GroupID: "g", DedupID: "d1"}},
			{"by content", byContent, SendInput{Body: []byte("same"), GroupID: "g"}, SendInput{Body: []byte("same"), GroupID: "h"}},
		}
		for _, tc := range tests {
			first := mustSend(t, tc.q, tc.a)[0]
			dup := mustSend(t, tc.q, tc.b)[0]
			if dup.MessageID != first.MessageID || dup.SequenceNumber != first.SequenceNumber {
				t.Fatalf("%s: duplicate got %+v, want the original %+v", tc.name, dup, first)
			}
			wantStats(t, tc.q, 1, 0, 0)
			// Still a duplicate after the original is consumed.
			msg := receive(t, tc.q, 10, time.Minute)[0]
			if err := tc.q.Delete(context.Background(), msg.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
			if again := mustSend(t, tc.q, tc.b)[0]; again.MessageID != first.MessageID {
				t.Fatalf("%s: duplicate after delete enqueued as %s", tc.name, again.MessageID)
			}
			wantStats(t, tc.q, 0, 0, 0)
		}
		time.Sleep(DedupWindow)
		for _, tc := range tests {
			if res := mustSend(t, tc.q, tc.b)[0]; res.MessageID == "" {
				t.Fatal("no id")
			}
			wantStats(t, tc.q, 1, 0, 0)
		}
	})
}

func TestPurge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		for _, cfg := range []Config{{Name: "p"}, {Name: "p.fifo", FIFO: true, ContentBasedDeduplication: true}} {
			q := mustCreate(t, m, cfg)
			var in []SendInput
			for i, b := range fmtBodies("m", 20) {
				in = append(in, SendInput{Body: []byte(b), GroupID: string(rune('a' + i%3))}.forQueue(cfg))
			}
			mustSend(t, q, in...)
			inflight := receive(t, q, 3, time.Minute)
			if err := q.Purge(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantStats(t, q, 0, 0, 0)
			if err := q.Delete(context.Background(), inflight[0].ReceiptHandle); err != nil {
				t.Fatalf("delete after purge: %v", err)
			}
			mustSend(t, q, SendInput{Body: []byte("after"), GroupID: "a"}.forQueue(cfg))
			time.Sleep(time.Minute)
			if got := receive(t, q, 10, time.Minute); len(got) != 1 || string(got[0].Body) != "after" {
				t.Fatalf("%s after purge: %v", cfg.Name, bodies(got))
			}
		}
	})
}

func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "r", Retention: time.Minute})
		sendBodies(t, q, "old")
		receive(t, q, 1, 10*time.Minute) // in flight does not protect it
		time.Sleep(30 * time.Second)
		sendBodies(t, q, "new")
		time.Sleep(30 * time.Second)
		wantStats(t, q, 1, 0, 0)
		got := receive(t, q, 10, time.Minute)
		if !slices.Equal(bodies(got), []string{"new"}) {
			t.Fatalf("after retention: %v", bodies(got))
		}
	})
}

func TestLongPoll(t *testing.T) {
	tests := []struct {
		name     string
		prepare  func(t *testing.T, q *Queue)
		trigger  func(t *testing.T, q *Queue)
		wantWake time.Duration // fake time from the start of Receive to its return
		wantN    int
	}{
		{
			name:     "wakes on send",
			trigger:  func(t *testing.T, q *Queue) { time.Sleep(3 * time.Second); sendBodies(t, q, "x") },
			wantWake: 3 * time.Second, wantN: 1,
		},
		{
			name:     "wakes on visibility expiry",
			prepare:  func(t *testing.T, q *Queue) { sendBodies(t, q, "x"); receive(t, q, 1, 7*time.Second) },
			trigger:  func(*testing.T, *Queue) {},
			wantWake: 7 * time.Second, wantN: 1,
		},
		{
			name: "wakes on change visibility to zero",
			prepare: func(t *testing.T, q *Queue) {
				sendBodies(t, q, "x")
				msg := receive(t, q, 1, time.Minute)[0]
				go func() {
					time.Sleep(2 * time.Second)
					if err := q.ChangeVisibility(context.Background(), msg.ReceiptHandle, 0); err != nil {
						panic(err)
					}
				}()
			},
			trigger:  func(*testing.T, *Queue) {},
			wantWake: 2 * time.Second, wantN: 1,
		},
		{
			name: "wakes on a shortened visibility timeout",
			prepare: func(t *testing.T, q *Queue) {
				sendBodies(t, q, "x")
				msg := receive(t, q, 1, time.Minute)[0]
				go func() {
					time.Sleep(2 * time.Second)
					if err := q.ChangeVisibility(context.Background(), msg.ReceiptHandle, 3*time.Second); err != nil {
						panic(err)
					}
				}()
			},
			trigger:  func(*testing.T, *Queue) {},
			wantWake: 5 * time.Second, wantN: 1,
		},
		{
			name: "wakes on delay end",
			prepare: func(t *testing.T, q *Queue) {
				mustSend(t, q, SendInput{Body: []byte("x"), Delay: 4 * time.Second, HasDelay: true})
			},
			trigger:  func(*testing.T, *Queue) {},
			wantWake: 4 * time.Second, wantN: 1,
		},
		{
			name:     "times out empty",
			trigger:  func(*testing.T, *Queue) {},
			wantWake: 20 * time.Second, wantN: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := openMem(t, nil, "always")
				defer m.Close()
				q := mustCreate(t, m, Config{Name: "lp"})
				if tc.prepare != nil {
					tc.prepare(t, q)
				}
				type result struct {
					msgs    []Message
					err     error
					elapsed time.Duration
				}
				done := make(chan result, 1)
				go func() {
					start := time.Now()
					msgs, err := q.Receive(context.Background(), 10, time.Minute, 20*time.Second)
					done <- result{msgs, err, time.Since(start)}
				}()
				synctest.Wait() // the receiver is parked
				tc.trigger(t, q)
				r := <-done
				if r.err != nil || len(r.msgs) != tc.wantN || r.elapsed != tc.wantWake {
					t.Fatalf("Receive = %d messages, %v after %v; want %d after %v", len(r.msgs), r.err, r.elapsed, tc.wantN, tc.wantWake)
				}
			})
		})
	}
}

func TestReceiveCancelAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		q := mustCreate(t, m, Config{Name: "c"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		msgs, err := q.Receive(ctx, 1, -1, 20*time.Second)
		if err != nil || len(msgs) != 0 || time.Since(start) != 5*time.Second {
			t.Fatalf("cancelled receive = %v, %v after %v", msgs, err, time.Since(start))
		}
		done := make(chan error, 1)
		go func() {
			_, err := q.Receive(context.Background(), 1, -1, 20*time.Second)
			done <- err
		}()
		synctest.Wait()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("receive during close: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestSendCopiesInputs(t *testing.T) {
	m := openMem(t, nil, "never")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "copy"})
	body := []byte("body")
	value := []byte("value")
	mustSend(t, q, SendInput{Body: body, Attributes: []Attribute{{Name: "a", DataType: "String", Value: value}}})
	copy(body, "XXXX")
	copy(value, "XXXXX")
	got := receive(t, q, 1, time.Minute)[0]
	if string(got.Body) != "body" || string(got.Attributes[0].Value) != "value" {
		t.Fatalf("stored message changed with the caller's buffers: %q %q", got.Body, got.Attributes[0].Value)
	}
}

func TestZeroVisibilityReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "z", VisibilityTimeout: -1})
		sendBodies(t, q, "x")
		// One receive returns the message once, even with room for more.
		first := receive(t, q, 10, -1)
		if len(first) != 1 {
			t.Fatalf("first receive = %v", bodies(first))
		}
		second := receive(t, q, 10, -1)
		if len(second) != 1 || second[0].ReceiveCount != 2 {
			t.Fatalf("zero visibility: second receive = %+v", second)
		}
	})
}

func TestQueueDefaultWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "w", ReceiveWait: 5 * time.Second})
		start := time.Now()
		if got, err := q.Receive(context.Background(), 1, -1, -1); err != nil || len(got) != 0 || time.Since(start) != 5*time.Second {
			t.Fatalf("default wait: %v, %v after %v", got, err, time.Since(start))
		}
	})
}

// TestCancelledWaiterPassesItsWakeOn: a receiver picked to wake for a new
// message but leaving at that moment (its ctx ended) must pass the wake-up
// on, or the message would wait for another parked receiver's timeout. The
// leaving receiver is simulated with its waiter, for a deterministic race.
func TestCancelledWaiterPassesItsWakeOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "pass"})
		leaving := &waiter{ch: make(chan struct{}, 1)}
		q.mu.Lock()
		q.waiters = append(q.waiters, leaving) // first in line to be woken
		q.mu.Unlock()
		type result struct {
			n       int
			elapsed time.Duration
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			msgs, _ := q.Receive(context.Background(), 1, time.Minute, 20*time.Second)
			done <- result{len(msgs), time.Since(start)}
		}()
		synctest.Wait()
		sendBodies(t, q, "x")
		select {
		case <-leaving.ch:
		default:
			t.Fatal("the first waiter was not the one woken")
		}
		q.dropWaiter(leaving)
		if r := <-done; r.n != 1 || r.elapsed != 0 {
			t.Fatalf("the wake-up was not passed on: the parked receiver got %d after %v", r.n, r.elapsed)
		}
	})
}

func TestFIFODeadLetterKeepsGroupOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq.fifo", FIFO: true})
		q := mustCreate(t, m, Config{Name: "src.fifo", FIFO: true, ContentBasedDeduplication: true, DeadLetterQueue: "dlq.fifo", MaxReceiveCount: 1})
		mustSend(t, q, SendInput{Body: []byte("g1"), GroupID: "g"}, SendInput{Body: []byte("g2"), GroupID: "g"})
		first := receive(t, q, 1, time.Second)
		if !slices.Equal(bodies(first), []string{"g1"}) {
			t.Fatalf("first = %v", bodies(first))
		}
		time.Sleep(time.Second)
		// g1 exceeded its receives: it moves, and g2 is next in order.
		got := receive(t, q, 10, time.Minute)
		if !slices.Equal(bodies(got), []string{"g2"}) {
			t.Fatalf("after the move = %v", bodies(got))
		}
		dead := receive(t, dlq, 10, time.Minute)
		if len(dead) != 1 || string(dead[0].Body) != "g1" || dead[0].GroupID != "g" || dead[0].DeadLetterSource != "src.fifo" {
			t.Fatalf("dlq = %+v", dead)
		}
	})
}

func TestMissingDeadLetterQueueKeepsDelivering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "src", DeadLetterQueue: "absent", MaxReceiveCount: 1})
		sendBodies(t, q, "x")
		receive(t, q, 1, time.Second)
		time.Sleep(time.Second)
		if got := receive(t, q, 1, time.Second); len(got) != 1 || got[0].ReceiveCount != 2 {
			t.Fatalf("without its DLQ the message must stay deliverable: %+v", got)
		}
	})
}

func TestRedriveCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq"})
		mustCreate(t, m, Config{Name: "dest"})
		sendBodies(t, dlq, fmtBodies("m", 5)...)
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		n, err := m.Redrive(ctx, "dlq", "dest", 0, 1)
		if !errors.Is(err, context.DeadlineExceeded) || n != 3 {
			t.Fatalf("Redrive = %d, %v; want 3 moved (at 0s, 1s, 2s) and the deadline", n, err)
		}
		wantStats(t, dlq, 2, 0, 0) // the batch taken at cancel went back
	})
}

// TestBatchWakesByDemand: a batch sent to a queue with several parked
// receivers wakes only as many as asked for it together, oldest first: ten
// messages wake the one receiver that asked for ten, not every parked one
// (the others would wake, find the batch taken and park again: a wasted
// wake-up, lock and timer reset each, per batch). The batch still goes
// whole to the receiver woken.
func TestBatchWakesByDemand(t *testing.T) {
	q := &Queue{}
	park := func(maxes ...int) []*waiter {
		ws := make([]*waiter, len(maxes))
		for i, m := range maxes {
			ws[i] = &waiter{ch: make(chan struct{}, 1), max: m}
		}
		q.waiters = append(q.waiters[:0], ws...)
		return ws
	}
	for _, tc := range []struct {
		name  string
		maxes []int
		n     int
		want  int
	}{
		{"one asking ten takes a batch of ten", []int{10, 10, 10, 10}, 10, 1},
		{"a batch larger than one's demand", []int{10, 10, 10, 10}, 15, 2},
		{"receivers of one each", []int{1, 1, 1, 1}, 3, 3},
		{"more than all ask for", []int{2, 2}, 10, 2},
		{"every waiter", []int{10, 1, 5}, -1, 3},
		{"a waiter with no demand counts as one", []int{0, 0, 0}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := park(tc.maxes...)
			got := q.takeWaitersLocked(tc.n)
			if len(got) != tc.want || len(q.waiters) != len(ws)-tc.want {
				t.Fatalf("took %d, left %d; want %d taken, oldest first", len(got), len(q.waiters), tc.want)
			}
			for i, w := range got {
				if w != ws[i] {
					t.Fatalf("waiter %d taken out of order", i)
				}
			}
		})
	}

	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "demand"})
		got := make(chan int, 4)
		for range 4 {
			go func() {
				msgs, _ := q.Receive(context.Background(), 10, time.Minute, 20*time.Second)
				got <- len(msgs)
			}()
		}
		synctest.Wait()
		batch := make([]string, 10)
		for i := range batch {
			batch[i] = "m" + strconv.Itoa(i)
		}
		sendBodies(t, q, batch...)
		synctest.Wait()
		q.mu.Lock()
		parked := len(q.waiters)
		q.mu.Unlock()
		if n := len(got); n != 1 || parked != 3 {
			t.Fatalf("after a batch of 10: %d receivers returned, %d parked; want 1 and 3", n, parked)
		}
		if n := <-got; n != 10 {
			t.Fatalf("the woken receiver got %d messages; want 10", n)
		}
		time.Sleep(21 * time.Second) // the others time out empty
		for range 3 {
			if n := <-got; n != 0 {
				t.Fatalf("a receiver that was not woken got %d", n)
			}
		}
	})
}
