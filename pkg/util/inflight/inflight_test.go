package inflight

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestSecondAcquireOfSameKeyFails(t *testing.T) {
	var g Guard
	release, ok := g.TryAcquire("vol-1")
	if !ok {
		t.Fatal("first acquire failed")
	}
	if _, ok := g.TryAcquire("vol-1"); ok {
		t.Fatal("second acquire of the same key succeeded")
	}
	if _, ok := g.TryAcquire("vol-2"); !ok {
		t.Fatal("acquire of another key failed")
	}
	release()
	release() // idempotent
	if _, ok := g.TryAcquire("vol-1"); !ok {
		t.Fatal("acquire after release failed")
	}
	if got := g.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
}

func TestConcurrentAcquireAdmitsExactlyOne(t *testing.T) {
	var g Guard
	var admitted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, ok := g.TryAcquire("name"); ok {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 1 {
		t.Fatalf("%d callers admitted, want 1", admitted.Load())
	}
}
