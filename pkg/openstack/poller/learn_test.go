package poller

import (
	"fmt"
	"testing"
	"time"
)

func newClockPoller(cfg Config, after time.Duration, learn bool) (*Poller[string], *clockSource) {
	clock := newFakeClock()
	src := &clockSource{clock: clock, after: after, first: map[string]time.Time{}}
	p := New(src.fetch, cfg).WithClock(clock)
	if learn {
		p.LearnBy(func(r Result[string]) string { return r.Value })
	}
	return p, src
}

// TestHeadStartSkipsEarlyPolls: once a kind of change is known to take
// about 200 ms, the next wait of that kind skips the checks a
// proportional schedule would make before then. On a fake clock the
// counts are exact.
func TestHeadStartSkipsEarlyPolls(t *testing.T) {
	cfg := Config{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Fraction: 0.1, HeadStart: 0.8}
	p, src := newClockPoller(cfg, 200*time.Millisecond, true)
	var fetches []int64
	for i := 0; i < 3; i++ {
		n, took := stepWait(t, p, src, fmt.Sprint(i), Hint{})
		if took < 200*time.Millisecond || took > 220*time.Millisecond {
			t.Errorf("wait %d took %s on the clock; want 200 ms plus at most one 10 %% step; fetches %v", i, took, src.seen)
		}
		fetches = append(fetches, n)
	}
	// Cold: 0, then every 5 ms until 50 ms (11), then 10 % steps to
	// 209 ms (15): 26 checks. Learned: the immediate check, one at 80 % of the 200 ms
	// learned, then 10 % steps: 5.
	if fetches[0] != 26 || fetches[1] != 5 || fetches[2] != 5 {
		t.Fatalf("fetches per wait = %v; want [26 5 5]", fetches)
	}
}

// TestHintedWaitSkipsTheImmediateCheck: a wait that names its kind and
// start makes its first check at the learned head start, counted from
// the start it names.
func TestHintedWaitSkipsTheImmediateCheck(t *testing.T) {
	cfg := Config{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Fraction: 0.1, HeadStart: 0.8}
	p, src := newClockPoller(cfg, 200*time.Millisecond, true)
	stepWait(t, p, src, "cold", Hint{Kind: "creating"})
	n, _ := stepWait(t, p, src, "warm", Hint{Kind: "creating", Since: src.clock.Now()})
	// 160 ms, 176 ms, 193.6 ms, 213 ms: no check at 0.
	if n != 4 {
		t.Fatalf("hinted learned wait made %d fetches, want 4", n)
	}
	if got := p.Learned()["creating"]; got < 150*time.Millisecond || got > 170*time.Millisecond {
		t.Fatalf("learned head start %s, want about 0.8 × 200 ms", got)
	}
}

// TestTooLateHeadStartShrinks: a kind that became quicker is found done
// at its first check; the next wait checks earlier.
func TestTooLateHeadStartShrinks(t *testing.T) {
	cfg := Config{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Fraction: 0.1, HeadStart: 1}
	p, src := newClockPoller(cfg, 200*time.Millisecond, true)
	stepWait(t, p, src, "slow", Hint{Kind: "creating"})
	before := p.Learned()["creating"]
	src.after = 50 * time.Millisecond
	stepWait(t, p, src, "quick", Hint{Kind: "creating", Since: src.clock.Now()})
	if after := p.Learned()["creating"]; after >= before {
		t.Fatalf("head start %s after a too-late first check, was %s; want it shorter", after, before)
	}
}

// TestProportionalScheduleWithoutLearning: with Fraction and no
// classifier the checks still end, and a long wait is not polled at the
// floor rate throughout.
func TestProportionalScheduleWithoutLearning(t *testing.T) {
	cfg := Config{Initial: 2 * time.Millisecond, Max: 100 * time.Millisecond, Fraction: 0.1}
	p, src := newClockPoller(cfg, 300*time.Millisecond, false)
	n, _ := stepWait(t, p, src, "a", Hint{})
	// A 2 ms floor throughout would be 150 checks; 10 % steps from 20 ms
	// on are about 10 + ln(300/20)/ln(1.1) ≈ 38.
	if n > 45 {
		t.Fatalf("%d fetches for a 300 ms wait; the schedule is not proportional", n)
	}
}
