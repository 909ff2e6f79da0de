package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// splitConfig: orders are split into one message per item and published to
// a RabbitMQ exchange bound to one queue (publisher confirms).
const splitConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  rabbit: { type: amqp, url: "${AMQP_URL}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 2 }
pipelines:
  - name: tasks
    from: orders
    transform:
      split: 'body.items'
      value: '{"order": body.n, "line": index, "sku": item}'
    routes:
      - name: rabbit
        to:
          amqp:
            connection: rabbit
            exchange: "${OUT_QUEUE}"
            routing_key: '"task"'
            declare:
              exchanges: [ { name: "${OUT_QUEUE}", type: direct } ]
              queues: [ { name: "${OUT_QUEUE}" } ]
              bindings: [ { queue: "${OUT_QUEUE}", exchange: "${OUT_QUEUE}", key: task } ]
    retry: { initial_backoff: 50ms, max_backoff: 1s }
    batch_size: 64
`

// TestSplitPartsSurviveKills: clients post orders of 1 to 4 items while
// bridge is SIGKILLed and restarted three times; the pipeline splits each
// order into one RabbitMQ message per item. At-least-once and order: every
// item of every acknowledged order reaches the queue, and in each
// partition's stream the parts of one order come consecutively, in index
// order (a run cut short by a kill is sent again whole after the restart).
func TestSplitPartsSurviveKills(t *testing.T) {
	const orders, clients, batch = 3000, 2, 25
	amqpURL := rabbitVhost(t)
	queue := fmt.Sprintf("tasks-%016x", rand.Uint64())
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data,
		strings.NewReplacer("${AMQP_URL}", amqpURL, "${OUT_QUEUE}", queue).Replace(splitConfig))
	items := func(n int) int { return n%4 + 1 }
	var cur atomic.Pointer[instance]
	cur.Store(start(t, cfg, httpAddr, sqsAddr, data))
	url := cur.Load().httpURL

	var posted atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for c := range clients {
		wg.Go(func() {
			for first := c * batch; first < orders; first += clients * batch {
				var evs []map[string]any
				for n := first; n < first+batch && n < orders; n++ {
					skus := make([]string, items(n))
					for j := range skus {
						skus[j] = fmt.Sprintf("sku-%d-%d", n, j)
					}
					evs = append(evs, map[string]any{"key": "k" + strconv.Itoa(n%16), "value": map[string]any{"n": n, "items": skus}})
				}
				for ctx.Err() == nil {
					if code, _, err := postEvents(ctx, url, "orders", evs); err == nil && code == 200 {
						posted.Add(int64(len(evs)))
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				// Paced so that every kill lands while clients post and the
				// pipeline splits.
				time.Sleep(30 * time.Millisecond)
			}
		})
	}
	for k := range 3 {
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond)
		cur.Load().kill()
		t.Logf("kill %d after %d orders acknowledged", k+1, posted.Load())
		cur.Store(start(t, cfg, httpAddr, sqsAddr, data))
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("clients did not finish: %d acknowledged", posted.Load())
	}
	in := cur.Load()
	waitFor(t, 2*time.Minute, func() error {
		var st pipelineStatus
		getJSON(t, in.httpURL+"/v1/pipelines/tasks", &st)
		if st.Routes[0].Lag != 0 {
			return fmt.Errorf("lag %d", st.Routes[0].Lag)
		}
		return nil
	})
	wantParts := 0
	for n := range orders {
		wantParts += items(n)
	}
	msgs := amqpE2EDrain(t, amqpURL, queue, wantParts)

	// Per partition: runs of parts that start at 0 and count up within one
	// event id; a run complete up to its last item proves its order arrived.
	type run struct {
		id         string
		order, nxt int
	}
	current := map[string]*run{} // partition -> open run
	complete := map[int]bool{}
	duplicates := 0
	for i, d := range msgs {
		var p struct{ Order, Line int }
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatalf("message %d: %s: %v", i, d.Body, err)
		}
		id, _ := d.Headers["bridge-event-id"].(string)
		idx, _ := d.Headers["bridge-split-index"].(string)
		parts := strings.Split(id, "/")
		if len(parts) != 3 || idx != strconv.Itoa(p.Line) {
			t.Fatalf("message %d (%s): bridge-event-id %q, bridge-split-index %q", i, d.Body, id, idx)
		}
		r := current[parts[1]]
		switch {
		case p.Line == 0:
			if r != nil && r.nxt < items(r.order) {
				t.Logf("partition %s: run of %s cut at part %d (a kill), sent again later", parts[1], r.id, r.nxt)
			}
			r = &run{id: id, order: p.Order}
			current[parts[1]] = r
		case r == nil || r.id != id || r.nxt != p.Line:
			t.Fatalf("message %d: part %d of %s (order %d) does not follow the previous part of its event in partition %s (open run %+v)",
				i, p.Line, id, p.Order, parts[1], r)
		}
		r.nxt++
		if r.nxt == items(p.Order) {
			if complete[p.Order] {
				duplicates++
			}
			complete[p.Order] = true
		}
	}
	for n := range orders {
		if !complete[n] {
			t.Fatalf("order %d: its %d parts never arrived complete and in order (%d messages, %d parts expected)",
				n, items(n), len(msgs), wantParts)
		}
	}
	t.Logf("%d orders, %d parts expected, %d messages (%d orders delivered more than once after kills)",
		orders, wantParts, len(msgs), duplicates)
}
