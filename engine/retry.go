package engine

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy is how a route retries a failed send. MaxAttempts 0 retries a
// retryable failure for ever (the backbone is the buffer while a target is
// down, SPEC §5.6); a positive value hands the event to on_error after that
// many attempts.
type RetryPolicy struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	return p
}

// backoff returns the pause before attempt+1: exponential from
// InitialBackoff, capped at MaxBackoff, with "equal jitter" (half fixed, half
// random) so that many partitions retrying one dead target do not march in
// lock step, yet the pause never collapses to zero.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	if d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// sleep waits d or until ctx is done; it reports whether the full pause ran.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
