package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bridgeio/bridge/console/audit"
	"github.com/bridgeio/bridge/console/views"
)

// A job is a redrive started from the console. It runs on a goroutine the
// jobs set owns (waited for by Close), reports progress that the job page
// polls, and writes an audit entry when it starts and when it ends.

type job struct {
	id, kind, target, who string
	rate                  int
	started               time.Time
	cancel                context.CancelFunc

	mu                           sync.Mutex
	total, done, failed, skipped int
	state, err                   string
	ended                        time.Time
}

func (j *job) view() views.JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	return views.JobView{ID: j.id, Kind: j.kind, Target: j.target, Who: j.who, State: j.state, Error: j.err,
		Total: j.total, Done: j.done, Failed: j.failed, Skipped: j.skipped, Rate: j.rate, Started: j.started,
		Ended: j.ended, Running: j.state == "running"}
}

func (j *job) progress(total, done, failed, skipped int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if total >= 0 {
		j.total = total
	}
	j.done, j.failed, j.skipped = done, failed, skipped
}

// jobs is the set of jobs, bounded to the last keep.
type jobs struct {
	keep int
	wg   sync.WaitGroup

	mu      sync.Mutex
	seq     int
	byID    map[string]*job
	order   []string
	running int
}

// maxRunningJobs bounds concurrent redrives started from the console.
const maxRunningJobs = 4

var errTooManyJobs = errors.New("too many redrives running; wait for one to finish")

func newJobs(keep int) *jobs { return &jobs{keep: keep, byID: map[string]*job{}} }

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.byID[id]
}

func (js *jobs) wait() { js.wg.Wait() }

// start runs fn as a job. fn reports progress through j.progress and
// returns how many it moved and an error.
func (s *Server) startJob(kind, target, who string, total, rate int, fn func(ctx context.Context, j *job) error) (*job, error) {
	js := s.jobs
	js.mu.Lock()
	if js.running >= maxRunningJobs {
		js.mu.Unlock()
		return nil, errTooManyJobs
	}
	js.seq++
	ctx, cancel := context.WithCancel(s.ctx)
	j := &job{id: strconv.Itoa(js.seq), kind: kind, target: target, who: who, rate: rate, started: s.opts.Now().UTC(),
		cancel: cancel, total: total, state: "running"}
	js.byID[j.id] = j
	js.order = append(js.order, j.id)
	for len(js.order) > js.keep {
		old := js.byID[js.order[0]]
		if old != nil && old.view().Running {
			break // never forget a running job
		}
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
	js.running++
	js.mu.Unlock()
	if err := s.audit.Append(audit.Entry{Who: who, Action: kind, Target: target, Count: total,
		Detail: fmt.Sprintf("job %s at %d/s", j.id, rate), Result: "started"}); err != nil {
		cancel()
		js.mu.Lock()
		js.running--
		js.mu.Unlock()
		j.mu.Lock()
		j.state, j.err = "failed", "audit log: "+err.Error()
		j.mu.Unlock()
		return nil, fmt.Errorf("audit log: %w; nothing was redriven", err)
	}
	js.wg.Go(func() {
		defer cancel()
		err := fn(ctx, j)
		j.mu.Lock()
		j.ended = s.opts.Now().UTC()
		switch {
		case errors.Is(err, context.Canceled):
			j.state = "cancelled"
		case err != nil:
			j.state, j.err = "failed", err.Error()
		default:
			j.state = "done"
		}
		result := j.state
		if j.err != "" {
			result += ": " + j.err
		}
		done := j.done
		detail := fmt.Sprintf("job %s: %d sent, %d failed, %d skipped", j.id, j.done, j.failed, j.skipped)
		j.mu.Unlock()
		js.mu.Lock()
		js.running--
		js.mu.Unlock()
		if err := s.audit.Append(audit.Entry{Who: who, Action: kind, Target: target, Count: done, Detail: detail, Result: result}); err != nil {
			s.log.Error("console audit entry not written", "job", j.id, "err", err)
		}
	})
	return j, nil
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such job (jobs are kept in memory until restart)")
		return
	}
	s.render(w, r, http.StatusOK, views.JobPage(s.page(r, "Job "+j.id, "queues"), j.view()))
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request) {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such job")
		return
	}
	j.cancel()
	http.Redirect(w, r, s.base+"/jobs/"+j.id, http.StatusSeeOther)
}

// redirect sends a browser (or htmx) to url after a POST.
func redirect(w http.ResponseWriter, r *http.Request, url string) {
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", url)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, url, http.StatusSeeOther)
}
