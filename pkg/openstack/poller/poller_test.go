package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSource is a set of resources whose state a test changes, with a
// counter of fetches.
type fakeSource struct {
	mu     sync.Mutex
	state  map[string]string
	calls  atomic.Int64
	asked  atomic.Int64
	failOn func(n int64) error
}

func (f *fakeSource) fetch(_ context.Context, ids []string) (map[string]Result[string], error) {
	n := f.calls.Add(1)
	f.asked.Add(int64(len(ids)))
	if f.failOn != nil {
		if err := f.failOn(n); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Result[string]{}
	for id, s := range f.state {
		out[id] = Result[string]{Value: s}
	}
	for _, id := range ids {
		if _, ok := f.state[id]; !ok {
			out[id] = Result[string]{Gone: true}
		}
	}
	return out, nil
}

func (f *fakeSource) set(id, s string) {
	f.mu.Lock()
	f.state[id] = s
	f.mu.Unlock()
}

var fastConfig = Config{Initial: 5 * time.Millisecond, Factor: 2, Max: 40 * time.Millisecond, MinGap: 2 * time.Millisecond}

func waitReady(ctx context.Context, p *Poller[string], id string) (Result[string], bool, error) {
	return p.Wait(ctx, id, func(r Result[string], err error) (bool, error) {
		if err != nil {
			return true, err
		}
		if r.Gone {
			return true, errors.New("gone")
		}
		return r.Value == "ready", nil
	})
}

func TestWaitEndsWhenDone(t *testing.T) {
	src := &fakeSource{state: map[string]string{"a": "creating"}}
	p := New(src.fetch, fastConfig)
	go func() {
		time.Sleep(20 * time.Millisecond)
		src.set("a", "ready")
	}()
	r, seen, err := waitReady(context.Background(), p, "a")
	if err != nil || !seen || r.Value != "ready" {
		t.Fatalf("got %+v seen=%t err=%v", r, seen, err)
	}
}

func TestWaitReturnsLastObservationOnDeadline(t *testing.T) {
	src := &fakeSource{state: map[string]string{"a": "attaching"}}
	p := New(src.fetch, fastConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, seen, err := waitReady(ctx, p, "a")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline", err)
	}
	if !seen || r.Value != "attaching" {
		t.Fatalf("last observation = %+v seen=%t", r, seen)
	}
}

func TestCheckDecidesAboutFetchErrors(t *testing.T) {
	boom := errors.New("boom")
	src := &fakeSource{state: map[string]string{"a": "ready"}, failOn: func(n int64) error {
		if n <= 2 {
			return boom
		}
		return nil
	}}
	p := New(src.fetch, fastConfig)
	var errs int
	r, _, err := p.Wait(context.Background(), "a", func(r Result[string], err error) (bool, error) {
		if err != nil {
			errs++
			return false, nil // ride it out
		}
		return r.Value == "ready", nil
	})
	if err != nil || r.Value != "ready" || errs != 2 {
		t.Fatalf("r=%+v err=%v errs=%d", r, err, errs)
	}
}

// TestConcurrentWaitersShareFetches: 50 waiters on 50 ids need far fewer
// fetches than 50 independent pollers would make.
func TestConcurrentWaitersShareFetches(t *testing.T) {
	const n = 50
	src := &fakeSource{state: map[string]string{}}
	for i := 0; i < n; i++ {
		src.set(fmt.Sprint(i), "creating")
	}
	p := New(src.fetch, fastConfig)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			_, _, err := waitReady(context.Background(), p, id)
			errs <- err
		}(fmt.Sprint(i))
	}
	// Let every waiter poll a few times, then finish them in a spread.
	time.Sleep(60 * time.Millisecond)
	for i := 0; i < n; i++ {
		src.set(fmt.Sprint(i), "ready")
		if i%10 == 9 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	shared := src.calls.Load()
	// Each waiter alone would fetch at least once per its own check: the
	// ids asked for are a lower bound of what independent polls cost.
	independent := src.asked.Load()
	t.Logf("50 waiters: %d shared fetches, %d id-checks (what independent polling would fetch at least)", shared, independent)
	if shared*5 > independent {
		t.Errorf("shared fetches %d not far below independent %d", shared, independent)
	}
	if p.Fetches() != int(shared) {
		t.Errorf("Fetches() = %d, source saw %d", p.Fetches(), shared)
	}
}

func TestLoopStopsWhenNoWaiterIsLeft(t *testing.T) {
	src := &fakeSource{state: map[string]string{"a": "ready"}}
	p := New(src.fetch, fastConfig)
	if _, _, err := waitReady(context.Background(), p, "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	before := src.calls.Load()
	time.Sleep(60 * time.Millisecond)
	if after := src.calls.Load(); after != before {
		t.Errorf("poller kept fetching with no waiter: %d -> %d", before, after)
	}
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if running {
		t.Error("loop still running")
	}
}
