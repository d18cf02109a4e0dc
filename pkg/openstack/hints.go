package openstack

import (
	"context"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

// Kinds of change a wait can be hinted with (poller.Hint): the status the
// resource shows while the change runs, and for creates from a source a
// kind of their own, since a clone or a restore takes its own time.
const (
	changeCreating        = VolumeCreating
	changeCreatingClone   = "creating:clone"
	changeCreatingRestore = "creating:snapshot"
	changeCreatingBackup  = "creating:backup"
	changeAttaching       = VolumeAttaching
	changeDetaching       = VolumeDetaching
	changeExtending       = VolumeExtending
	changeRetyping        = VolumeRetyping
	changeDeleting        = VolumeDeleting
)

// actionTTL is how long a sent request hints the waits on its resource:
// longer than any sidecar's retries of one operation (the attacher's
// backoff tops out at 5 min), so that a retry after Aborted still counts
// the change from its real start.
const actionTTL = 10 * time.Minute

// maxActions bounds the log; past it, entries older than actionTTL go.
const maxActions = 4096

// actionLog remembers the last state-changing request this process sent
// for each volume and snapshot, so that the wait after it knows what it
// waits for and since when: the cloud started the change when it got the
// request, not when the wait began.
type actionLog struct {
	mu sync.Mutex
	m  map[string]poller.Hint
}

func newActionLog() *actionLog { return &actionLog{m: map[string]poller.Hint{}} }

// sent records that a request starting a change of kind on key went out
// at at.
func (a *actionLog) sent(key, kind string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= maxActions {
		for k, h := range a.m {
			if time.Since(h.Since) > actionTTL {
				delete(a.m, k)
			}
		}
	}
	a.m[key] = poller.Hint{Kind: kind, Since: at}
}

// hint returns what a wait on key waits for, or the zero Hint.
func (a *actionLog) hint(key string) poller.Hint {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.m[key]
	if !ok || time.Since(h.Since) > actionTTL {
		return poller.Hint{}
	}
	return h
}

// done forgets key's change once a wait has seen it finish.
func (a *actionLog) done(key string, h poller.Hint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[key] == h {
		delete(a.m, key)
	}
}

func volumeKey(id string) string   { return "volume/" + id }
func snapshotKey(id string) string { return "snapshot/" + id }

// createKind names the change a volume create starts.
func createKind(o CreateVolumeOpts) string {
	switch {
	case o.SnapshotID != "":
		return changeCreatingRestore
	case o.SourceVolumeID != "":
		return changeCreatingClone
	case o.BackupID != "":
		return changeCreatingBackup
	}
	return changeCreating
}

// sendChange sends r, a request that starts a change of kind on the
// resource logged under key, and logs it once it was accepted.
func (c *cloud) sendChange(ctx context.Context, sc gopherClient, key, kind string, r req) error {
	return c.logChange(key, kind, func() error { return do(ctx, sc, r) })
}

// logChange runs send, which asks for a change of kind on the resource
// logged under key, and logs it when send succeeds.
func (c *cloud) logChange(key, kind string, send func() error) error {
	at := time.Now()
	err := send()
	if err == nil {
		c.polls.sent.sent(key, kind, at)
	}
	return err
}
