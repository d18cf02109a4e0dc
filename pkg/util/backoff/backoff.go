// Package backoff is the one exponential backoff of the plugins: the
// device finder's and the metadata client's retry loops and the cloud
// layer's request retries take their delays and their context-bound
// sleeps from here.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exponential is a delay that starts at First and doubles on each retry
// up to Max. With Jitter each delay is drawn from [d/2, d], so that many
// callers failing at once do not come back in step.
type Exponential struct {
	First  time.Duration
	Max    time.Duration
	Jitter bool
}

// Delay returns the delay before retry n (1-based; n < 1 counts as 1).
func (e Exponential) Delay(n int) time.Duration {
	d := e.First
	for i := 1; i < n && d < e.Max; i++ {
		d *= 2
	}
	if d > e.Max || d <= 0 {
		d = e.Max
	}
	if !e.Jitter || d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// Sleep waits for d unless ctx ends first, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SleepWithin is Sleep that does not start a wait ctx's deadline would cut
// short: it returns context.DeadlineExceeded at once instead, so the
// caller can answer with what it has while there is time left.
func SleepWithin(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
	}
	return Sleep(ctx, d)
}
