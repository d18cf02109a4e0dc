package volumelock

import (
	"sync"
	"testing"
)

func TestTryLockRefusesSecondHolderUntilUnlock(t *testing.T) {
	var l Locks
	if !l.TryLock("vol-a") {
		t.Fatal("first TryLock(vol-a) = false, want true")
	}
	if l.TryLock("vol-a") {
		t.Fatal("second TryLock(vol-a) = true while held, want false")
	}
	if !l.TryLock("vol-b") {
		t.Fatal("TryLock(vol-b) = false, want true: locks are per volume")
	}
	l.Unlock("vol-a")
	if l.Held("vol-a") {
		t.Fatal("Held(vol-a) after Unlock = true")
	}
	if !l.TryLock("vol-a") {
		t.Fatal("TryLock(vol-a) after Unlock = false, want true")
	}
}

func TestTryLockGrantsExactlyOneOfManyConcurrentCallers(t *testing.T) {
	l := New()
	const callers = 32
	var wg sync.WaitGroup
	results := make(chan bool, callers)
	start := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results <- l.TryLock("vol")
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	granted := 0
	for ok := range results {
		if ok {
			granted++
		}
	}
	if granted != 1 {
		t.Fatalf("granted %d locks for one volume, want exactly 1", granted)
	}
}

func BenchmarkTryLockUnlock(b *testing.B) {
	l := New()
	for b.Loop() {
		l.TryLock("vol")
		l.Unlock("vol")
	}
}
