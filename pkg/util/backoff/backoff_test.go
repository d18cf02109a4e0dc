package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	e := Exponential{First: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := e.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := e.Delay(0); got != 100*time.Millisecond {
		t.Errorf("Delay(0) = %v, want the first delay", got)
	}
	if got := e.Delay(1 << 20); got != time.Second {
		t.Errorf("Delay(huge) = %v, want the cap", got)
	}
}

func TestJitterStaysWithinHalfAndFull(t *testing.T) {
	e := Exponential{First: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}
	for n := 1; n <= 8; n++ {
		full := Exponential{First: e.First, Max: e.Max}.Delay(n)
		for range 50 {
			if d := e.Delay(n); d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}

func TestSleepWithinRefusesAWaitPastTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := SleepWithin(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SleepWithin past the deadline = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("SleepWithin waited although the deadline was too close")
	}
	if err := SleepWithin(ctx, time.Millisecond); err != nil {
		t.Fatalf("SleepWithin inside the deadline = %v", err)
	}
}
