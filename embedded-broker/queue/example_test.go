package queue_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// A worker receives a message, processes it and deletes it; a message it
// does not delete comes back after the visibility timeout.
func Example() {
	dir, _ := os.MkdirTemp("", "queues")
	defer os.RemoveAll(dir)
	m, err := queue.Open(queue.Options{Dir: dir, Fsync: "always"})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	q, err := m.Create(queue.Config{Name: "fulfillment-eu", VisibilityTimeout: 30 * time.Second})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if _, err := q.Send(ctx, []queue.SendInput{{Body: []byte(`{"order":1}`)}}); err != nil {
		panic(err)
	}
	msgs, err := q.Receive(ctx, 10, -1, 5*time.Second)
	if err != nil {
		panic(err)
	}
	for _, msg := range msgs {
		fmt.Printf("%s receive #%d\n", msg.Body, msg.ReceiveCount)
		if err := q.Delete(ctx, msg.ReceiptHandle); err != nil {
			panic(err)
		}
	}
	fmt.Printf("%+v\n", q.Stats().Visible+q.Stats().InFlight)
	// Output:
	// {"order":1} receive #1
	// 0
}
