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
	// HeadStart (0..1), with a classifier set by LearnBy, holds a
	// waiter's second check until HeadStart times the quickest recent
	// wait of the same kind: the polls a proportional schedule would
	// spend before a change can plausibly be done are skipped.
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
	waiters   map[*waiter[T]]struct{}
	running   bool
	wake      chan struct{}
	lastFetch time.Time
	fetches   int

	classify func(Result[T]) string
	learned  map[string]*recent
}

// learnWindow is how many recent waits of one kind the head start looks
// at: enough that one slow or fast outlier does not steer it for long.
const learnWindow = 16

// recent holds the latest wait durations of one kind, as lower bounds:
// the age of the last observation that was not yet done.
type recent struct {
	ages []time.Duration
	next int
}

func (r *recent) add(d time.Duration) {
	if len(r.ages) < learnWindow {
		r.ages = append(r.ages, d)
		return
	}
	r.ages[r.next] = d
	r.next = (r.next + 1) % learnWindow
}

func (r *recent) min() time.Duration {
	m := r.ages[0]
	for _, d := range r.ages[1:] {
		m = min(m, d)
	}
	return m
}

type update[T any] struct {
	res Result[T]
	err error
	// prevAge is the waiter's age at the observation before this one;
	// zero for the first.
	prevAge time.Duration
}

type waiter[T any] struct {
	id       string
	start    time.Time
	next     time.Time
	interval time.Duration
	class    string         // the kind of change, from the first observation
	lastAge  time.Duration  // age at the latest observation
	ch       chan update[T] // capacity 1, holds only the newest update
}

// New returns a poller using fetch.
func New[T any](fetch FetchFunc[T], cfg Config) *Poller[T] {
	return &Poller[T]{fetch: fetch, cfg: cfg.withDefaults(), waiters: map[*waiter[T]]struct{}{}, wake: make(chan struct{}, 1)}
}

// LearnBy sets how the poller tells kinds of change apart (a volume's
// status at the first check: creating, attaching, detaching...), so that
// with Config.HeadStart it learns how long each kind takes. It returns p.
func (p *Poller[T]) LearnBy(classify func(Result[T]) string) *Poller[T] {
	p.mu.Lock()
	p.classify = classify
	p.learned = map[string]*recent{}
	p.mu.Unlock()
	return p
}

// learn records that a wait of w's kind was not done at age notDoneAt and
// was done at the next observation.
func (p *Poller[T]) learn(w *waiter[T], notDoneAt time.Duration) {
	if notDoneAt <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == nil || w.class == "" {
		return
	}
	r := p.learned[w.class]
	if r == nil {
		r = &recent{}
		p.learned[w.class] = r
	}
	r.add(notDoneAt)
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
	if r := p.learned[w.class]; r != nil && p.cfg.HeadStart > 0 {
		if head := w.start.Add(time.Duration(float64(r.min()) * p.cfg.HeadStart)); head.After(w.next) {
			w.next = head
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
	now := time.Now()
	w := &waiter[T]{id: id, start: now, next: now, interval: p.cfg.Initial, ch: make(chan update[T], 1)}
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
			if err == nil && done {
				p.learn(w, u.prevAge)
			}
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
		if gap := p.lastFetch.Add(p.minGap()); gap.After(earliest) {
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
		r, ok := results[w.id]
		if err == nil && ok && w.class == "" && p.classify != nil {
			w.class = p.classify(r)
		}
		if due[w] {
			p.schedule(w, after)
		}
		var u update[T]
		switch {
		case err != nil && due[w]:
			u = update[T]{err: err}
		case err == nil && ok:
			u = update[T]{res: r, prevAge: w.lastAge}
			w.lastAge = after.Sub(w.start)
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
