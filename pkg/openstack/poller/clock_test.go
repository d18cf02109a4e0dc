package poller

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock moves only when fire is called: then to the earliest pending
// timer's deadline, which it fires.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, o := range t.c.timers {
		if o == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// pending reports whether a timer waits to fire.
func (c *fakeClock) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers) > 0
}

// fire moves the clock to the earliest timer and fires it.
func (c *fakeClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return
	}
	sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	t := c.timers[0]
	c.timers = c.timers[1:]
	if t.at.After(c.now) {
		c.now = t.at
	}
	t.ch <- c.now
}

// clockSource is a resource per id that turns ready a set time after its
// wait starts (or it is first asked for), on the fake clock, with a count
// of fetches.
type clockSource struct {
	clock *fakeClock
	after time.Duration
	mu    sync.Mutex
	first map[string]time.Time
	calls atomic.Int64
	seen  []string // id@age of every fetch, for failure messages
}

func (s *clockSource) fetch(_ context.Context, ids []string) (map[string]Result[string], error) {
	s.calls.Add(1)
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Result[string]{}
	for _, id := range ids {
		f, ok := s.first[id]
		if !ok {
			f = now
			s.first[id] = f
		}
		v := "creating"
		if now.Sub(f) >= s.after {
			v = "ready"
		}
		s.seen = append(s.seen, fmt.Sprintf("%s@%s", id, now.Sub(f)))
		out[id] = Result[string]{Value: v}
	}
	return out, nil
}

// stepWait runs one Wait for id on p and moves the fake clock whenever
// the poller sleeps and the waiter has read every observation, so the
// poll schedule alone (not the machine's speed) decides what is fetched
// when. It returns the fetches made and the clock's time it took.
func stepWait(t *testing.T, p *Poller[string], src *clockSource, id string, h Hint) (int64, time.Duration) {
	t.Helper()
	before, start := src.calls.Load(), src.clock.Now()
	src.mu.Lock()
	src.first[id] = start // the change starts with the wait
	src.mu.Unlock()
	var checks atomic.Int64
	var finished atomic.Bool
	done := make(chan error, 1)
	go func() {
		_, _, err := p.WaitHinted(context.Background(), id, h, func(r Result[string], err error) (bool, error) {
			// finished before checks: the driver reads them the other
			// way round, so it never sees this check counted while the
			// wait it ends still looks unfinished.
			done := err != nil || r.Value == "ready"
			finished.Store(done)
			checks.Add(1)
			return done, err
		})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			waitLoopExit(t, p)
			return src.calls.Load() - before, src.clock.Now().Sub(start)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("wait did not finish")
		}
		if checks.Load() == src.calls.Load()-before && !finished.Load() && src.clock.pending() {
			src.clock.fire()
		} else {
			runtime.Gosched()
		}
	}
}

// waitLoopExit waits for the poll loop to stop after its last waiter left,
// so that the next wait starts on a fresh loop.
func waitLoopExit(t *testing.T, p *Poller[string]) {
	t.Helper()
	for i := 0; ; i++ {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			return
		}
		if i > 100000 {
			t.Fatal("poll loop did not stop")
		}
		runtime.Gosched()
	}
}
