package bench

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// watchInterval is how often the watcher copies the emulator's state. 2 ms
// bounds the error of an intrinsic time; a copy of a few dozen objects
// takes microseconds.
const watchInterval = 2 * time.Millisecond

// observation is the state of one volume or snapshot from a moment on.
type observation struct {
	at       time.Time
	gone     bool
	status   string
	sizeGiB  int
	attached []string
}

// watcher records, in process and without API calls, when each volume and
// snapshot changed state in the emulator. The time from the start of an
// RPC to the change the RPC waits for is the cloud's intrinsic time for
// that operation: no client could answer sooner.
type watcher struct {
	mu      sync.Mutex
	history map[string][]observation
	stop    context.CancelFunc
	done    chan struct{}
}

func startWatcher(e *emulator.Emulator) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{history: map[string][]observation{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		for {
			w.sample(e)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watcher) close() { w.stop(); <-w.done }

func (w *watcher) sample(e *emulator.Emulator) {
	now := time.Now()
	seen := map[string]observation{}
	for _, v := range e.Volumes() {
		seen[v.ID] = observation{at: now, status: v.Status, sizeGiB: v.SizeGiB, attached: v.Attachments}
	}
	for _, s := range e.Snapshots() {
		seen[s.ID] = observation{at: now, status: s.Status, sizeGiB: s.SizeGiB}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, o := range seen {
		h := w.history[id]
		if n := len(h); n == 0 || !sameState(h[n-1], o) {
			w.history[id] = append(h, o)
		}
	}
	for id, h := range w.history {
		if _, ok := seen[id]; !ok && !h[len(h)-1].gone {
			w.history[id] = append(h, observation{at: now, gone: true})
		}
	}
}

func sameState(a, b observation) bool {
	return a.gone == b.gone && a.status == b.status && a.sizeGiB == b.sizeGiB && slices.Equal(a.attached, b.attached)
}

// reached returns when id first entered a state satisfying ok after
// since, or false when it has not (yet).
func (w *watcher) reached(id string, since time.Time, ok func(observation) bool) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.history[id] {
		if o.at.After(since) && ok(o) {
			return o.at, true
		}
	}
	return time.Time{}, false
}

// intrinsic waits for the watcher to have seen the change (it has by the
// time a waiting RPC returns, give or take one sample; an RPC that does not
// wait, like DeleteSnapshot, returns first) and returns its time from start.
func (w *watcher) intrinsic(id string, start time.Time, ok func(observation) bool) time.Duration {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if at, found := w.reached(id, start, ok); found {
			return at.Sub(start)
		}
		if time.Now().After(deadline) {
			return 0
		}
		time.Sleep(watchInterval)
	}
}
