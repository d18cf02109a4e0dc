package poller

import (
	"fmt"
	"math/rand/v2"
	"slices"
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

// TestHeadStartSettlesAtItsQuantile: changes of one kind that take
// 160-240 ms (the emulator's ±20 % jitter) are found done at the first
// check about 30 % of the time once the head start has settled, and a
// wait makes two checks at the median, on the driver's own schedule.
func TestHeadStartSettlesAtItsQuantile(t *testing.T) {
	cfg := Config{Initial: 20 * time.Millisecond, Max: 5 * time.Second, Fraction: 0.12, HeadStart: 0.9}
	p, src := newClockPoller(cfg, 200*time.Millisecond, true)
	rng := rand.New(rand.NewPCG(1, 2))
	const warm, n = 100, 400
	var firstHits int
	var fetches []int64
	for i := 0; i < warm+n; i++ {
		src.after = time.Duration(160+rng.IntN(81)) * time.Millisecond
		f, took := stepWait(t, p, src, fmt.Sprint(i), Hint{Kind: "creating", Since: src.clock.Now()})
		if i < warm {
			continue
		}
		if f == 1 {
			firstHits++
		}
		fetches = append(fetches, f)
		if ratio := float64(took) / float64(src.after); ratio > 1.35 {
			t.Errorf("wait %d: %s for a %s change (%.2f×)", i, took, src.after, ratio)
		}
	}
	slices.Sort(fetches)
	share := float64(firstHits) / n
	if share < 0.2 || share > 0.4 {
		t.Errorf("done at the first check in %.0f %% of waits, want about 30 %% (head start %s)", share*100, p.Learned()["creating"])
	}
	var sum int64
	for _, f := range fetches {
		sum += f
	}
	// At the quantile the second check (12 % after the head start) finds
	// about half the rest done: a median of 2, a mean about 2.4.
	if mean := float64(sum) / n; fetches[n/2] > 2 || mean > 2.7 {
		t.Errorf("checks per wait: median %d, mean %.2f; want at most 2 and 2.7 (head start %s)", fetches[n/2], mean, p.Learned()["creating"])
	}
}

// TestHeadStartFollowsASlowerCloud: a kind that becomes five times
// slower moves the head start to the new durations within a few waits.
func TestHeadStartFollowsASlowerCloud(t *testing.T) {
	cfg := Config{Initial: 5 * time.Millisecond, Max: 5 * time.Second, Fraction: 0.12, HeadStart: 0.9}
	p, src := newClockPoller(cfg, 200*time.Millisecond, true)
	for i := 0; i < 20; i++ {
		stepWait(t, p, src, fmt.Sprint("a", i), Hint{Kind: "creating", Since: src.clock.Now()})
	}
	src.after = time.Second
	for i := 0; i < 3; i++ {
		stepWait(t, p, src, fmt.Sprint("b", i), Hint{Kind: "creating", Since: src.clock.Now()})
	}
	if got := p.Learned()["creating"]; got < 700*time.Millisecond || got > 1100*time.Millisecond {
		t.Fatalf("head start %s three waits after the kind went from 200 ms to 1 s", got)
	}
}
