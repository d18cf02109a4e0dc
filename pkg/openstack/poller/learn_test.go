package poller

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// readyAfter flips id to ready d after it is first asked for.
func readyAfter(src *fakeSource, id string, d time.Duration) {
	src.set(id, "creating")
	go func() {
		time.Sleep(d)
		src.set(id, "ready")
	}()
}

// TestHeadStartSkipsEarlyPolls: once a kind of change is known to take
// about 200 ms, the next wait of that kind skips the checks a
// proportional schedule would make before then. Counts fetches, not time.
func TestHeadStartSkipsEarlyPolls(t *testing.T) {
	cfg := Config{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Fraction: 0.1, HeadStart: 0.8}
	src := &fakeSource{state: map[string]string{}}
	p := New(src.fetch, cfg).LearnBy(func(r Result[string]) string { return r.Value })
	var fetches []int64
	for i := 0; i < 3; i++ {
		id := fmt.Sprint(i)
		before := src.calls.Load()
		readyAfter(src, id, 200*time.Millisecond)
		if _, _, err := waitReady(context.Background(), p, id); err != nil {
			t.Fatal(err)
		}
		fetches = append(fetches, src.calls.Load()-before)
	}
	// Cold: 0, then every 5 ms until 50 ms, then 10 % steps to 200 ms:
	// well over ten checks. Learned: the immediate check, one at about
	// 160 ms, then a few 10 % steps.
	if fetches[0] < 10 || fetches[2] > fetches[0]/2 {
		t.Fatalf("fetches per wait = %v; want the learned waits to need under half the cold one's", fetches)
	}
}

// TestProportionalScheduleWithoutLearning: with Fraction and no
// classifier the checks still end, and a long wait is not polled at the
// floor rate throughout.
func TestProportionalScheduleWithoutLearning(t *testing.T) {
	cfg := Config{Initial: 2 * time.Millisecond, Max: 100 * time.Millisecond, Fraction: 0.1}
	src := &fakeSource{state: map[string]string{}}
	p := New(src.fetch, cfg)
	readyAfter(src, "a", 300*time.Millisecond)
	if _, _, err := waitReady(context.Background(), p, "a"); err != nil {
		t.Fatal(err)
	}
	// A 2 ms floor throughout would be ~150 checks; 10 % steps from 20 ms
	// on are about 10 + ln(300/20)/ln(1.1) ≈ 38.
	if n := src.calls.Load(); n > 80 {
		t.Fatalf("%d fetches for a 300 ms wait; the schedule is not proportional", n)
	}
}
