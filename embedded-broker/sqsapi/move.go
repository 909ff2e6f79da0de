package sqsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// Message move task statuses, as SQS names them.
const (
	taskRunning    = "RUNNING"
	taskCompleted  = "COMPLETED"
	taskCancelling = "CANCELLING"
	taskCancelled  = "CANCELLED"
	taskFailed     = "FAILED"
)

// Limits of StartMessageMoveTask.
const (
	maxMoveRate = 500 // messages per second, SQS's bound on MaxNumberOfMessagesPerSecond
	// moveChunk is how many messages one Redrive call moves. Moving in
	// chunks makes progress visible to ListMessageMoveTasks and bounds how
	// far a task overshoots a cancel.
	moveChunk = 100
	// maxTasksPerSource bounds the history kept per source queue (SQS lists
	// the tasks of the last 14 days; ten is what ListMessageMoveTasks can
	// return at most).
	maxTasksPerSource = 10
)

// moveTask is one StartMessageMoveTask. Fields after mu are guarded by it.
type moveTask struct {
	handle, source, dest string
	rate                 int
	toMove               int64
	started              time.Time
	cancel               context.CancelFunc

	mu      sync.Mutex
	status  string
	moved   int64
	failure string
}

// moveTasks indexes move tasks. A source queue has at most one RUNNING task.
type moveTasks struct {
	mu       sync.Mutex
	byHandle map[string]*moveTask
	bySource map[string][]*moveTask // newest last
	closed   bool                   // set by Server.Close: no new tasks
}

type startMessageMoveTaskRequest struct {
	SourceArn                    string
	DestinationArn               string
	MaxNumberOfMessagesPerSecond *int
}

// startMessageMoveTaskResult is StartMessageMoveTask's result.
type startMessageMoveTaskResult struct{ TaskHandle string }

func (s *Server) startMessageMoveTask(_ context.Context, req *startMessageMoveTaskRequest) (*startMessageMoveTaskResult, *apiError) {
	source, ok := nameFromARN(req.SourceArn)
	if !ok {
		return nil, newError(kindInvalidParameterValue, "Value %s for parameter SourceArn is invalid.", req.SourceArn)
	}
	src, err := s.manager.Get(source)
	if err != nil {
		return nil, newError(kindResourceNotFound, "The resource that you specified for the SourceArn parameter doesn't exist.")
	}
	if len(s.manager.DeadLetterSources(source)) == 0 {
		return nil, newError(kindInvalidParameterValue, "Source queue must be configured as a Dead Letter Queue.")
	}
	var dest string
	if req.DestinationArn != "" {
		if dest, ok = nameFromARN(req.DestinationArn); !ok {
			return nil, newError(kindInvalidParameterValue, "Value %s for parameter DestinationArn is invalid.", req.DestinationArn)
		}
		if _, err := s.manager.Get(dest); err != nil {
			return nil, newError(kindResourceNotFound, "The resource that you specified for the DestinationArn parameter doesn't exist.")
		}
	}
	rate := 0
	if req.MaxNumberOfMessagesPerSecond != nil {
		rate = *req.MaxNumberOfMessagesPerSecond
		if rate < 1 || rate > maxMoveRate {
			return nil, newError(kindInvalidParameterValue, "Value %d for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and %d.", rate, maxMoveRate)
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	t := &moveTask{
		handle: newTaskHandle(), source: source, dest: dest, rate: rate,
		toMove: int64(src.Stats().Visible), started: s.now(), cancel: cancel, status: taskRunning,
	}
	if apiErr := s.tasks.add(t, &s.wg, func() { s.runMoveTask(ctx, t) }); apiErr != nil {
		cancel()
		return nil, apiErr
	}
	return &startMessageMoveTaskResult{t.handle}, nil
}

func newTaskHandle() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// add registers t and starts run in wg. Starting under ts.mu, after the
// closed check, means no goroutine is added to wg once Close began waiting.
func (ts *moveTasks) add(t *moveTask, wg *sync.WaitGroup, run func()) *apiError {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return newError(kindInternal, "The server is shutting down.")
	}
	if ts.bySource == nil {
		ts.bySource = make(map[string][]*moveTask)
	}
	list := ts.bySource[t.source]
	for _, other := range list {
		if other.state() == taskRunning || other.state() == taskCancelling {
			return newError(kindUnsupportedOperation, "There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
		}
	}
	list = append(list, t)
	if len(list) > maxTasksPerSource {
		delete(ts.byHandle, list[0].handle)
		list = slices.Delete(list, 0, 1)
	}
	ts.bySource[t.source] = list
	ts.byHandle[t.handle] = t
	wg.Go(run)
	return nil
}

func (t *moveTask) state() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// runMoveTask moves the messages the source held at the start, in chunks,
// under the task's rate. It ends COMPLETED when the source is drained or the
// count is reached, CANCELLED on cancel, FAILED on an engine error.
func (s *Server) runMoveTask(ctx context.Context, t *moveTask) {
	defer t.cancel()
	for {
		t.mu.Lock()
		remaining := t.toMove - t.moved
		t.mu.Unlock()
		if remaining <= 0 {
			t.finish(taskCompleted, "")
			return
		}
		n, err := s.manager.Redrive(ctx, t.source, t.dest, int(min(remaining, moveChunk)), t.rate)
		t.mu.Lock()
		t.moved += int64(n)
		t.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			t.finish(taskCancelled, "")
			return
		case err != nil:
			reason := err.Error()
			if errors.Is(err, queue.ErrNoSuchQueue) {
				reason = "The destination queue does not exist."
			}
			t.finish(taskFailed, reason)
			return
		case n == 0:
			// The source ran dry before the count: consumers or a purge
			// took messages meanwhile.
			t.finish(taskCompleted, "")
			return
		}
	}
}

func (t *moveTask) finish(status, failure string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status, t.failure = status, failure
}

type listMessageMoveTasksRequest struct {
	SourceArn  string
	MaxResults *int
}

type moveTaskEntry struct {
	TaskHandle                        string `json:",omitempty"`
	Status                            string
	SourceArn                         string
	DestinationArn                    string `json:",omitempty"`
	MaxNumberOfMessagesPerSecond      *int   `json:",omitempty"`
	ApproximateNumberOfMessagesMoved  int64
	ApproximateNumberOfMessagesToMove int64
	FailureReason                     string `json:",omitempty"`
	StartedTimestamp                  int64
}

// listMessageMoveTasksResult is ListMessageMoveTasks's result, newest first.
type listMessageMoveTasksResult struct{ Results []moveTaskEntry }

func (s *Server) listMessageMoveTasks(_ context.Context, req *listMessageMoveTasksRequest) (*listMessageMoveTasksResult, *apiError) {
	source, ok := nameFromARN(req.SourceArn)
	if !ok {
		return nil, newError(kindInvalidParameterValue, "Value %s for parameter SourceArn is invalid.", req.SourceArn)
	}
	if _, err := s.manager.Get(source); err != nil {
		return nil, newError(kindResourceNotFound, "The resource that you specified for the SourceArn parameter doesn't exist.")
	}
	limit := 1
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > 10 {
			return nil, newError(kindInvalidParameterValue, "Value %d for parameter MaxResults is invalid. Reason: Must be between 1 and 10.", *req.MaxResults)
		}
		limit = *req.MaxResults
	}
	s.tasks.mu.Lock()
	list := slices.Clone(s.tasks.bySource[source])
	s.tasks.mu.Unlock()
	results := []moveTaskEntry{}
	for i := len(list) - 1; i >= 0 && len(results) < limit; i-- {
		results = append(results, s.taskEntry(list[i]))
	}
	return &listMessageMoveTasksResult{results}, nil
}

func (s *Server) taskEntry(t *moveTask) moveTaskEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := moveTaskEntry{
		Status: t.status, SourceArn: s.queueARN(t.source),
		ApproximateNumberOfMessagesMoved: t.moved, ApproximateNumberOfMessagesToMove: t.toMove,
		FailureReason: t.failure, StartedTimestamp: t.started.UnixMilli(),
	}
	// SQS returns the handle only while the task can still be cancelled.
	if t.status == taskRunning {
		e.TaskHandle = t.handle
	}
	if t.dest != "" {
		e.DestinationArn = s.queueARN(t.dest)
	}
	if t.rate > 0 {
		rate := t.rate
		e.MaxNumberOfMessagesPerSecond = &rate
	}
	return e
}

type cancelMessageMoveTaskRequest struct{ TaskHandle string }

// cancelMessageMoveTaskResult is CancelMessageMoveTask's result.
type cancelMessageMoveTaskResult struct{ ApproximateNumberOfMessagesMoved int64 }

func (s *Server) cancelMessageMoveTask(_ context.Context, req *cancelMessageMoveTaskRequest) (*cancelMessageMoveTaskResult, *apiError) {
	s.tasks.mu.Lock()
	t := s.tasks.byHandle[req.TaskHandle]
	s.tasks.mu.Unlock()
	if t == nil {
		return nil, newError(kindResourceNotFound, "The task handle %q does not exist.", req.TaskHandle)
	}
	t.mu.Lock()
	if t.status != taskRunning {
		t.mu.Unlock()
		return nil, newError(kindUnsupportedOperation, "Only a RUNNING task can be cancelled; this one is %s.", t.status)
	}
	t.status = taskCancelling
	moved := t.moved
	t.mu.Unlock()
	t.cancel()
	return &cancelMessageMoveTaskResult{moved}, nil
}
