// Package volumelock serializes node RPCs per volume. A second RPC on a
// volume that is already being worked on is refused at once rather than
// queued: the CSI spec asks for Aborted in that case and the CO retries, so
// a queue would only hold goroutines that kubelet has already given up on.
package volumelock

import "sync"

// Locks is a set of per-volume try-locks. The zero value is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// New returns an empty lock set.
func New() *Locks { return &Locks{} }

// TryLock takes the lock for id. It returns false when another caller holds
// it; the caller must then answer Aborted and must not call Unlock.
func (l *Locks) TryLock(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]struct{}{}
	}
	if _, busy := l.held[id]; busy {
		return false
	}
	l.held[id] = struct{}{}
	return true
}

// Unlock releases the lock for id. Releasing a lock that is not held is a
// no-op.
func (l *Locks) Unlock(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, id)
}

// Held reports whether id is locked right now (for tests and diagnostics).
func (l *Locks) Held(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, busy := l.held[id]
	return busy
}
