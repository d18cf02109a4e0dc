package openstack

import (
	"context"
	"sync"
	"time"
)

// RateLimit is a client-side token bucket for one service: QPS tokens a
// second, up to Burst at once. The zero value means no limit.
type RateLimit struct {
	QPS   float64
	Burst int
}

// tokenBucket is a minimal token bucket. It is in-house rather than
// golang.org/x/time/rate to keep the dependency list to the one in
// DEVELOPERS.md; it needs only Wait.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(l RateLimit) *tokenBucket {
	if l.QPS <= 0 {
		return nil
	}
	burst := float64(l.Burst)
	if burst < 1 {
		burst = 1
	}
	return &tokenBucket{rate: l.QPS, burst: burst, tokens: burst, last: time.Now()}
}

// wait takes one token, sleeping until one is available or ctx ends. It
// returns how long it waited. A nil bucket never waits.
func (b *tokenBucket) wait(ctx context.Context) (time.Duration, error) {
	if b == nil {
		return 0, nil
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
	b.tokens-- // reserve, possibly going negative: later callers queue behind
	deficit := -b.tokens
	b.mu.Unlock()
	if deficit <= 0 {
		return 0, nil
	}
	d := time.Duration(deficit / b.rate * float64(time.Second))
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		b.cancel()
		return 0, context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		b.cancel()
		return 0, ctx.Err()
	}
}

// cancel gives back a reserved token that will not be used.
func (b *tokenBucket) cancel() {
	b.mu.Lock()
	b.tokens++
	b.mu.Unlock()
}
