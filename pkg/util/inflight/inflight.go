// Package inflight rejects a second concurrent request for the same key.
//
// The CSI sidecars retry an RPC whose deadline passed while the first call
// may still be running in the driver. Letting both run would race two
// Cinder creates for one name or two Nova attaches for one volume, so the
// second caller gets an error at once and the sidecar retries later, by
// which time the first call has finished and the retry is a cheap lookup.
package inflight

import "sync"

// Guard is a set of keys currently being worked on. The zero value is ready
// to use; a Guard must not be copied after first use.
type Guard struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// TryAcquire marks key as in flight. It returns a release function and
// true, or nil and false when key is already in flight. Release is safe to
// call more than once.
func (g *Guard) TryAcquire(key string) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.keys == nil {
		g.keys = map[string]struct{}{}
	}
	if _, busy := g.keys[key]; busy {
		return nil, false
	}
	g.keys[key] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.keys, key)
			g.mu.Unlock()
		})
	}, true
}

// Len returns the number of keys in flight (for tests and metrics).
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}
