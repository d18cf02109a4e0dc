package poller

import "time"

// Learning. With a classifier (LearnBy) every finished wait tells the
// poller how long its kind of change took: it was not done at the
// observation before the last and done at the last, so its duration lies
// in that span. A later wait of the same kind with Config.HeadStart set
// makes no check before the change can plausibly be done: its first check
// after the start (for a hinted wait, its very first) is at HeadStart
// times the quickest recent duration, and from there the proportional
// schedule (Config.Fraction) takes over. A wait that was already done at
// that first check teaches a shorter duration than it showed (0.8 of
// it), so a head start that has become too late shrinks at once.

// learnWindow is how many recent waits of one kind the head start looks
// at: enough that one slow or fast outlier does not steer it for long.
const learnWindow = 16

// tooLateShrink is what a wait found done at its first check teaches: that
// the change took at most that long, taken as 0.8 of it so that repeated
// too-late first checks move earlier geometrically.
const tooLateShrink = 0.8

// recent holds the latest duration estimates of one kind.
type recent struct {
	est  []time.Duration
	next int
}

func (r *recent) add(d time.Duration) {
	if len(r.est) < learnWindow {
		r.est = append(r.est, d)
		return
	}
	r.est[r.next] = d
	r.next = (r.next + 1) % learnWindow
}

func (r *recent) min() time.Duration {
	m := r.est[0]
	for _, d := range r.est[1:] {
		m = min(m, d)
	}
	return m
}

// estimate turns a finished wait's span into one duration: the middle of
// (notDoneAt, doneAt] when the wait saw the change unfinished, or a bit
// under doneAt when its first look found it done already. ok is false
// when the span says nothing (an unhinted wait done at its first look, at
// age 0).
func estimate(notDoneAt, doneAt time.Duration, hinted bool) (time.Duration, bool) {
	switch {
	case doneAt <= 0:
		return 0, false
	case notDoneAt > 0:
		return notDoneAt + (doneAt-notDoneAt)/2, true
	case hinted:
		return time.Duration(float64(doneAt) * tooLateShrink), true
	}
	return 0, false
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

// learn records a finished wait of w's kind: not done at age notDoneAt (0:
// no earlier observation), done at doneAt.
func (p *Poller[T]) learn(w *waiter[T], notDoneAt, doneAt time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == nil || w.class == "" {
		return
	}
	d, ok := estimate(notDoneAt, doneAt, w.hinted)
	if !ok {
		return
	}
	r := p.learned[w.class]
	if r == nil {
		r = &recent{}
		p.learned[w.class] = r
	}
	r.add(d)
}

// headStart returns the age before which a wait of class need not be
// checked, or false when that kind has not been learned. Called with
// p.mu held.
func (p *Poller[T]) headStart(class string) (time.Duration, bool) {
	r := p.learned[class]
	if r == nil || p.cfg.HeadStart <= 0 || class == "" {
		return 0, false
	}
	return time.Duration(float64(r.min()) * p.cfg.HeadStart), true
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
