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

func TestAcquireAllIsAllOrNothing(t *testing.T) {
	var g Guard
	hold, _ := g.TryAcquire("b")
	if _, busy, ok := g.TryAcquireAll("a", "b", "c"); ok || busy != "b" {
		t.Fatalf("TryAcquireAll = busy %q ok %v, want busy b and false", busy, ok)
	}
	if g.Len() != 1 {
		t.Fatalf("a failed TryAcquireAll left keys behind: Len = %d", g.Len())
	}
	hold()
	release, _, ok := g.TryAcquireAll("a", "b", "c")
	if !ok {
		t.Fatal("TryAcquireAll failed on free keys")
	}
	release()
	if g.Len() != 0 {
		t.Fatalf("Len after release = %d", g.Len())
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
