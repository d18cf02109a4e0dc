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
	// Err is a failure to observe this id alone (its own GET failed);
	// the other ids of the same fetch are unaffected.
	Err error
}

// FetchFunc returns the state of the given ids. It may include ids it was
// not asked for (a listing answers for everything); an id it leaves out is
// simply not observed this round. An error applies to every asked id; a
// Result's Err to its id alone.
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
	// Fraction > 0 replaces the geometric schedule with a proportional
	// one: after the first check each interval is Fraction of the time
	// waited so far, at least Initial and at most Max. A change is then
	// seen at most Fraction late relative to its own duration, however
	// long it takes, instead of up to Factor-1 late.
	Fraction float64
	// GapWaiters > 0 shrinks MinGap while fewer waiters than this wait,
	// in proportion: a lone wait is not held to the spacing that keeps a
	// storm's shared polls cheap.
	GapWaiters int
	// HeadStart > 0, with a classifier set by LearnBy, holds a waiter's
	// checks after the first (a hinted waiter's first too) until the head
	// start its kind has learned: the polls a proportional schedule would
	// spend before a change can plausibly be done are skipped. The first
	// wait of a kind seeds the head start at HeadStart times its duration;
	// later waits move it to a low quantile of the kind's durations
	// (learn.go).
	HeadStart float64
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
	clock     Clock
	waiters   map[*waiter[T]]struct{}
	running   bool
	wake      chan struct{}
	lastFetch time.Time
	fetches   int

	classify func(Result[T]) string
	learned  map[string]*tracker
}

type update[T any] struct {
	res Result[T]
	err error
	// prevAge is the waiter's age at the observation before this one
	// (zero for the first), age its age at this one.
	prevAge, age time.Duration
}

type waiter[T any] struct {
	id       string
	start    time.Time
	next     time.Time
	interval time.Duration
	class    string         // the kind of change: hinted, or from the first observation
	atHead   bool           // the first check waits for the learned head start
	lastAge  time.Duration  // age at the latest observation
	ch       chan update[T] // capacity 1, holds only the newest update
}

// Hint is what a caller knows about the change it waits for: its kind
// (the status the resource shows while it runs: creating, attaching...)
// and when the request that started it was sent. A hinted wait counts
// its age from Since and, once its kind has been learned, makes its first
// check at the head start instead of at once. The zero Hint is a plain
// Wait.
type Hint struct {
	Kind  string
	Since time.Time
}

// New returns a poller using fetch.
func New[T any](fetch FetchFunc[T], cfg Config) *Poller[T] {
	return &Poller[T]{fetch: fetch, cfg: cfg.withDefaults(), clock: realClock{}, waiters: map[*waiter[T]]struct{}{}, wake: make(chan struct{}, 1)}
}

// schedule sets a due waiter's next check after an observation at now.
// Called with p.mu held.
func (p *Poller[T]) schedule(w *waiter[T], now time.Time) {
	if p.cfg.Fraction <= 0 {
		w.next = now.Add(w.interval)
		w.interval = time.Duration(float64(w.interval) * p.cfg.Factor)
		if w.interval > p.cfg.Max {
			w.interval = p.cfg.Max
		}
		return
	}
	age := now.Sub(w.start)
	iv := time.Duration(float64(age) * p.cfg.Fraction)
	iv = min(max(iv, p.cfg.Initial), p.cfg.Max)
	w.interval = iv
	w.next = now.Add(iv)
	if head, ok := p.headStart(w.class); ok {
		if at := w.start.Add(head); at.After(w.next) {
			w.next = at
		}
	}
}

// minGap is MinGap, shrunk while few waiters wait. Called with p.mu held.
func (p *Poller[T]) minGap() time.Duration {
	if n := len(p.waiters); p.cfg.GapWaiters > 0 && n < p.cfg.GapWaiters {
		return p.cfg.MinGap * time.Duration(n) / time.Duration(p.cfg.GapWaiters)
	}
	return p.cfg.MinGap
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
	return p.WaitHinted(ctx, id, Hint{}, check)
}

// WaitHinted is Wait for a change the caller knows about (see Hint).
func (p *Poller[T]) WaitHinted(ctx context.Context, id string, h Hint, check func(Result[T], error) (bool, error)) (Result[T], bool, error) {
	w := p.add(id, h)
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
			if err == nil && done {
				p.learn(w, u.prevAge, u.age)
			}
			if err != nil || done {
				return last, seen, err
			}
		}
	}
}

// newWaiter sets up a waiter's first check: at once, or for a hinted wait
// of a learned kind at its head start. Called with p.mu held.
func (p *Poller[T]) newWaiter(id string, h Hint) *waiter[T] {
	now := p.clock.Now()
	w := &waiter[T]{id: id, start: now, next: now, interval: p.cfg.Initial, ch: make(chan update[T], 1)}
	if h.Kind == "" {
		return w
	}
	w.class = h.Kind
	if !h.Since.IsZero() && h.Since.Before(now) {
		w.start = h.Since
	}
	if head, ok := p.headStart(h.Kind); ok && w.start.Add(head).After(now) {
		w.next = w.start.Add(head)
		w.atHead = true
	}
	return w
}

func (p *Poller[T]) add(id string, h Hint) *waiter[T] {
	p.mu.Lock()
	w := p.newWaiter(id, h)
	p.waiters[w] = struct{}{}
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.loop()
	} else {
		p.poke()
	}
	return w
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
		if gap := p.lastFetch.Add(p.minGap()); gap.After(earliest) {
			earliest = gap
		}
		clock := p.clock
		p.mu.Unlock()

		if d := earliest.Sub(clock.Now()); d > 0 {
			timer := clock.NewTimer(d)
			select {
			case <-timer.C():
			case <-p.wake:
				timer.Stop()
				continue
			}
		}
		p.tick()
	}
}

// tick fetches once for the due waiters and delivers the results.
func (p *Poller[T]) tick() {
	p.mu.Lock()
	now := p.clock.Now()
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
	after := p.clock.Now()
	for w := range p.waiters {
		r, ok := results[w.id]
		if err == nil && ok && r.Err == nil && w.class == "" && p.classify != nil {
			w.class = p.classify(r)
		}
		if due[w] {
			p.schedule(w, after)
		}
		if u, send := p.updateFor(w, due[w], r, ok, err, after); send {
			deliver(w, u)
		}
	}
}

// updateFor builds what one waiter learns from a fetch, and whether it
// learns anything: a fetch error or its id's own error reaches it only
// when it was due; a result (asked for or not) always does. Called with
// p.mu held.
func (p *Poller[T]) updateFor(w *waiter[T], due bool, r Result[T], ok bool, err error, at time.Time) (update[T], bool) {
	switch {
	case err != nil || (ok && r.Err != nil):
		if !due {
			return update[T]{}, false
		}
		if err == nil {
			err = r.Err
		}
		return update[T]{err: err}, true
	case ok:
		u := update[T]{res: r, prevAge: w.lastAge, age: at.Sub(w.start)}
		w.lastAge = u.age
		return u, true
	}
	return update[T]{}, false
}

// deliver replaces any update w has not read yet with u. A replaced
// observation's earlier age is kept, so that what the wait learns when it
// ends still spans only ages at which it was seen unfinished.
func deliver[T any](w *waiter[T], u update[T]) {
	select {
	case stale := <-w.ch:
		if stale.err == nil && u.err == nil {
			u.prevAge = stale.prevAge
		}
	default:
	}
	w.ch <- u
}
