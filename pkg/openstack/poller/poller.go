// Package poller shares one status poll among concurrent waiters.
//
// Each waiter waits for one resource id. Instead of one GET per waiter per
// tick, the poller gathers the ids of every waiter that is due and hands
// them to a single fetch, which may answer them all with one list call
// (Cinder's volumes/detail). Every waiter keeps its own schedule, fast at
// first and backing off, and is bounded by its own context; the poller
// only merges schedules that fall close together and never polls more
// often than MinGap.
package poller

import (
	"context"
	"sync"
	"time"
)

// Result is what one fetch learned about one id.
type Result[T any] struct {
	Value T
	// Gone means the resource does not exist (a 404, or absent from a
	// complete listing).
	Gone bool
}

// FetchFunc returns the state of the given ids. It may include ids it was
// not asked for (a listing answers for everything); an id it leaves out is
// simply not observed this round. An error applies to every asked id.
type FetchFunc[T any] func(ctx context.Context, ids []string) (map[string]Result[T], error)

// Config shapes the polling.
type Config struct {
	// Initial is the interval after the first check (which is immediate);
	// each further interval is Factor times the previous, up to Max.
	Initial time.Duration
	Factor  float64
	Max     time.Duration
	// MinGap is the least time between two fetches, however many waiters
	// are due: it caps the poll rate of the whole project.
	MinGap time.Duration
	// FetchTimeout bounds one fetch.
	FetchTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Initial <= 0 {
		c.Initial = 250 * time.Millisecond
	}
	if c.Factor < 1 {
		c.Factor = 2
	}
	if c.Max <= 0 {
		c.Max = 5 * time.Second
	}
	if c.Max < c.Initial {
		c.Max = c.Initial
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	return c
}

// Poller runs a poll loop while at least one waiter waits.
type Poller[T any] struct {
	fetch FetchFunc[T]
	cfg   Config

	mu        sync.Mutex
	waiters   map[*waiter[T]]struct{}
	running   bool
	wake      chan struct{}
	lastFetch time.Time
	fetches   int
}

type update[T any] struct {
	res Result[T]
	err error
}

type waiter[T any] struct {
	id       string
	next     time.Time
	interval time.Duration
	ch       chan update[T] // capacity 1, holds only the newest update
}

// New returns a poller using fetch.
func New[T any](fetch FetchFunc[T], cfg Config) *Poller[T] {
	return &Poller[T]{fetch: fetch, cfg: cfg.withDefaults(), waiters: map[*waiter[T]]struct{}{}, wake: make(chan struct{}, 1)}
}

// Fetches returns how many fetches the poller has made, for tests and
// benchmarks.
func (p *Poller[T]) Fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

// Wait observes id until check says done or returns an error, or ctx ends.
// check sees each observation once, in order; it is also given fetch
// errors, so it can decide which ones end the wait (return the error) and
// which ones to ride out (return false, nil).
//
// On a ctx end Wait returns the last observation, whether there was one,
// and ctx.Err().
func (p *Poller[T]) Wait(ctx context.Context, id string, check func(Result[T], error) (bool, error)) (Result[T], bool, error) {
	w := &waiter[T]{id: id, next: time.Now(), interval: p.cfg.Initial, ch: make(chan update[T], 1)}
	p.add(w)
	defer p.remove(w)
	var last Result[T]
	seen := false
	for {
		select {
		case <-ctx.Done():
			return last, seen, ctx.Err()
		case u := <-w.ch:
			if u.err == nil {
				last, seen = u.res, true
			}
			done, err := check(u.res, u.err)
			if err != nil || done {
				return last, seen, err
			}
		}
	}
}

func (p *Poller[T]) add(w *waiter[T]) {
	p.mu.Lock()
	p.waiters[w] = struct{}{}
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.loop()
	} else {
		p.poke()
	}
}

func (p *Poller[T]) remove(w *waiter[T]) {
	p.mu.Lock()
	delete(p.waiters, w)
	p.mu.Unlock()
	p.poke()
}

func (p *Poller[T]) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop sleeps until the earliest waiter is due (no sooner than MinGap after
// the last fetch), fetches for every waiter due then or soon, and exits
// when no waiter is left.
func (p *Poller[T]) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if len(p.waiters) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		var earliest time.Time
		for w := range p.waiters {
			if earliest.IsZero() || w.next.Before(earliest) {
				earliest = w.next
			}
		}
		if gap := p.lastFetch.Add(p.cfg.MinGap); gap.After(earliest) {
			earliest = gap
		}
		p.mu.Unlock()

		if d := time.Until(earliest); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-p.wake:
				if !timer.Stop() {
					<-timer.C
				}
				continue
			}
		}
		p.tick()
	}
}

// tick fetches once for the due waiters and delivers the results.
func (p *Poller[T]) tick() {
	now := time.Now()
	p.mu.Lock()
	due := map[*waiter[T]]bool{}
	var ids []string
	asked := map[string]bool{}
	for w := range p.waiters {
		// Coalescing: a waiter due within half its interval rides along,
		// so that waiters that started a little apart share ticks
		// instead of each pulling its own.
		if !w.next.After(now.Add(w.interval / 2)) {
			due[w] = true
			if !asked[w.id] {
				asked[w.id] = true
				ids = append(ids, w.id)
			}
		}
	}
	p.lastFetch = now
	if len(ids) > 0 {
		p.fetches++
	}
	p.mu.Unlock()
	if len(ids) == 0 {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.FetchTimeout)
	results, err := p.fetch(ctx, ids)
	cancel()

	p.mu.Lock()
	defer p.mu.Unlock()
	after := time.Now()
	for w := range p.waiters {
		if due[w] {
			w.next = after.Add(w.interval)
			w.interval = time.Duration(float64(w.interval) * p.cfg.Factor)
			if w.interval > p.cfg.Max {
				w.interval = p.cfg.Max
			}
		}
		var u update[T]
		switch r, ok := results[w.id]; {
		case err != nil && due[w]:
			u = update[T]{err: err}
		case err == nil && ok:
			u = update[T]{res: r}
		default:
			continue
		}
		select {
		case <-w.ch: // drop the stale update the waiter has not read
		default:
		}
		w.ch <- u
	}
}
