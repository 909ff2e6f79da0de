package commitlog_test

import (
	"context"
	"fmt"
	"os"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/event"
)

func Example() {
	dir, err := os.MkdirTemp("", "commitlog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l, err := commitlog.Open(commitlog.Options{Dir: dir, Fsync: commitlog.FsyncAlways})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	if err := l.CreateTopic("orders", 3); err != nil {
		panic(err)
	}
	ctx := context.Background()

	// Append returns once the event is fsynced; the key picks the
	// partition exactly as Kafka's Java client would.
	pos, err := l.Append(ctx, "orders", []event.Event{{Key: []byte("order-1"), Value: []byte(`{"amount":5}`), Source: "http"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("partition", pos[0].Partition, "offset", pos[0].Offset)

	// A consumer reads from its checkpoint and commits the offset after
	// the last event it processed.
	r, _ := l.NewReader("orders", pos[0].Partition, 0)
	evs, err := r.Next(ctx, 100, 1<<20)
	if err != nil {
		panic(err)
	}
	fmt.Println(evs[0].ID(), string(evs[0].Value), evs[0].Source)
	if err := l.Commit(ctx, "billing", "orders", pos[0].Partition, r.Offset()); err != nil {
		panic(err)
	}
	next, ok, _ := l.Committed(ctx, "billing", "orders", pos[0].Partition)
	fmt.Println("committed", next, ok)
	// Output:
	// partition 1 offset 0
	// orders/1/0 {"amount":5} http
	// committed 1 true
}
