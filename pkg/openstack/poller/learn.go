package poller

import "time"

// Learning. With a classifier (LearnBy) the poller keeps, per kind of
// change, a head start: the age at which a hinted wait of that kind makes
// its first check, and before which no wait of it is checked again. It
// tracks a low quantile of the kind's duration (headQuantile): each
// finished wait that shows the change was done by the head start moves it
// earlier by headStep, each one that shows it was not moves it later by
// headStep·q/(1−q), so it settles where a fraction q of waits are done at
// their first check. A tracker needs no window and copes with what a wait
// cannot tell (a change found done at its first check says only that it
// took no longer than that). From the head start on, the proportional
// schedule (Config.Fraction) takes over.
//
// Why q = 0.3: with the emulator's ±20 % jitter on its realistic profile
// (0.15-0.95 s changes) and 12 % steps, a simulation of 6000 waits per
// kind (2026-12-02) gave a median of 2 checks a wait, p50 1.07-1.09× and
// p99 1.20-1.24× the change's own time; the older head start (0.95 of the
// quickest recent wait) needed 3, at 1.06× and 1.16×; q = 0.4 needs 2 as
// well but reaches 1.25-1.29× at p99, since an early change waits for the
// first check. headStep 0.04 keeps the tracker's own noise (±5 %) from
// adding to that p99.
const (
	headQuantile = 0.3
	headStep     = 0.04
	// headMaxShrink bounds a streak's step (see tracker.streak).
	headMaxShrink = 0.25
	// headJump: a wait still unfinished at twice the head start means
	// the kind became slower; the head start restarts from that wait's
	// own duration times this instead of creeping up.
	headJump = 0.9
)

// tracker is one kind's head start.
type tracker struct {
	head time.Duration
	// streak counts consecutive waits done by the head start. From the
	// fourth on each one doubles the step (at most headMaxShrink): a kind
	// that became much quicker is caught in a few waits, while at the
	// quantile four in a row are rare (0.8 %). Doubling from the third,
	// with steps up to half, collapsed the head start in the ops bench
	// (a streak at 40 % hits is common in 15 waits) and cost a poll a
	// wait until it crept back.
	streak int
}

// observe moves the head start by one finished wait: not done at age
// notDoneAt (0: no earlier observation), done at doneAt; atHead says the
// wait's first check was at the head start (so done at its first check
// means done by the head start).
func (t *tracker) observe(notDoneAt, doneAt time.Duration, atHead bool) {
	switch {
	case notDoneAt == 0 && !atHead:
		// Done at a first look made at once (the change had ended before
		// the wait began): nothing to learn.
		return
	case notDoneAt == 0, doneAt <= t.head:
		t.streak++
		step := min(headMaxShrink, headStep*float64(int(1)<<min(max(t.streak-3, 0), 8)))
		t.head = time.Duration(float64(t.head) * (1 - step))
	case notDoneAt >= 2*t.head:
		t.streak = 0
		t.head = time.Duration(float64(notDoneAt+(doneAt-notDoneAt)/2) * headJump)
	case notDoneAt >= t.head:
		t.streak = 0
		t.head = time.Duration(float64(t.head) * (1 + headStep*headQuantile/(1-headQuantile)))
	default:
		// The change ended between two checks that straddle the head
		// start: nothing to learn about the quantile.
	}
}

// estimate turns a finished wait's span into one duration: the middle of
// (notDoneAt, doneAt] when the wait saw the change unfinished. ok is false
// when the span says nothing about its length (done at the first look).
func estimate(notDoneAt, doneAt time.Duration) (time.Duration, bool) {
	if doneAt <= 0 || notDoneAt <= 0 {
		return 0, false
	}
	return notDoneAt + (doneAt-notDoneAt)/2, true
}

// LearnBy sets how the poller tells kinds of change apart (a volume's
// status at the first check: creating, attaching, detaching...), so that
// with Config.HeadStart it learns how long each kind takes. It returns p.
func (p *Poller[T]) LearnBy(classify func(Result[T]) string) *Poller[T] {
	p.mu.Lock()
	p.classify = classify
	p.learned = map[string]*tracker{}
	p.mu.Unlock()
	return p
}

// learn records a finished wait of w's kind: not done at age notDoneAt (0:
// no earlier observation), done at doneAt. The first wait of a kind that
// saw the change unfinished seeds its head start at Config.HeadStart of
// its duration.
func (p *Poller[T]) learn(w *waiter[T], notDoneAt, doneAt time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == nil || w.class == "" || p.cfg.HeadStart <= 0 {
		return
	}
	if t := p.learned[w.class]; t != nil {
		t.observe(notDoneAt, doneAt, w.atHead)
		return
	}
	if d, ok := estimate(notDoneAt, doneAt); ok {
		p.learned[w.class] = &tracker{head: time.Duration(float64(d) * p.cfg.HeadStart)}
	}
}

// headStart returns the age before which a wait of class need not be
// checked, or false when that kind has not been learned. Called with
// p.mu held.
func (p *Poller[T]) headStart(class string) (time.Duration, bool) {
	t := p.learned[class]
	if t == nil || p.cfg.HeadStart <= 0 || class == "" {
		return 0, false
	}
	return t.head, true
}

// Learned returns the head start each learned kind gets now, for tests,
// benchmarks and logs.
func (p *Poller[T]) Learned() map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]time.Duration{}
	for class := range p.learned {
		if d, ok := p.headStart(class); ok {
			out[class] = d
		}
	}
	return out
}
