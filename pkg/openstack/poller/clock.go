package poller

import "time"

// Clock is the poller's time source: the real clock unless WithClock sets
// another (a test's, which moves only when the test says so).
type Clock interface {
	Now() time.Time
	// NewTimer starts a timer that sends on its channel once d has
	// passed on this clock.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the poller uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was
	// still running.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// WithClock makes p read time from c. Set it before the first Wait. It
// returns p.
func (p *Poller[T]) WithClock(c Clock) *Poller[T] {
	p.mu.Lock()
	p.clock = c
	p.mu.Unlock()
	return p
}
