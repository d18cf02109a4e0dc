package openstack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

// Poll tuning (measured with `make bench` against the emulator's
// realistic profile, the rig's own latencies, ±20 % jitter; the figures
// are in docs/benchmarks.md).
//
// A wait the cloud layer started itself (hints.go) knows its kind of
// change and its start. Once one change of that kind has finished, it
// makes its first check at the kind's learned head start, a tracked 30th
// percentile of its durations (seeded at 85 % of the first; learn.go),
// and then every 12 % of the time since the request: a change is seen at most
// 12 % after it happened, and the checks before it could plausibly be
// done are not made. That cut a lone CreateVolume from 6.5 calls to 5 and
// a DeleteSnapshot from 11.9 to 5 with a head start at 95 % of the
// quickest recent change (3 polls a wait), and to 4 each with the
// quantile (2 polls: `csi-bench -skip storm,calls,node -runs 3`,
// 2026-12-02, load 0.7). A wait that knows
// nothing (a retry that finds a change running) checks at once, then
// every 12 % of its age, at least every 20 ms: the old 100 ms floor saw a
// 150 ms extend 100 ms late (1.37×). The 200 ms gap between fetches (5 a
// second for the whole project, however many waiters) shrinks in
// proportion while fewer than 20 wait, to 10 ms for a lone one. The 5 s
// cap keeps a slow attach from being polled more than once per 5 s.
// Backups take minutes and are polled up to every 15 s.
var (
	volumePollConfig = poller.Config{Initial: 20 * time.Millisecond, Factor: 2, Max: 5 * time.Second,
		MinGap: 200 * time.Millisecond, GapWaiters: 20, FetchTimeout: 30 * time.Second, Fraction: 0.12, HeadStart: 0.85}
	backupPollConfig = poller.Config{Initial: time.Second, Factor: 2, Max: 15 * time.Second,
		MinGap: time.Second, FetchTimeout: 30 * time.Second}
)

type pollers struct {
	volumes   *poller.Poller[Volume]
	snapshots *poller.Poller[Snapshot]
	backups   *poller.Poller[Backup]
	// sent hints the volume and snapshot waits.
	sent *actionLog
}

func newPollers(c *cloud) *pollers {
	return &pollers{
		volumes: poller.New(batchFetch(c.fetchVolume, func(ctx context.Context) ([]Volume, error) {
			return listAll(ctx, c, volumeAPI, "volume_poll", ListOpts{})
		}, func(v Volume) string { return v.ID }), volumePollConfig).LearnBy(func(r poller.Result[Volume]) string { return r.Value.Status }),
		snapshots: poller.New(batchFetch(c.fetchSnapshot, func(ctx context.Context) ([]Snapshot, error) {
			return listAll(ctx, c, snapshotAPI, "snapshot_poll", ListOpts{})
		}, func(s Snapshot) string { return s.ID }), volumePollConfig).LearnBy(func(r poller.Result[Snapshot]) string { return r.Value.Status }),
		backups: poller.New(batchFetch(c.fetchBackup, func(ctx context.Context) ([]Backup, error) {
			return listAll(ctx, c, backupAPI, "backup_poll", ListOpts{})
		}, func(b Backup) string { return b.ID }), backupPollConfig),
		sent: newActionLog(),
	}
}

// rideOut reports fetch errors a wait continues through: the service is
// busy or briefly unreachable, or one fetch timed out.
func rideOut(err error) bool {
	switch KindOf(err) {
	case KindUnavailable, KindRateLimited, KindTimeout, KindUnknown:
		return true
	}
	return false
}

func isErrorStatus(status string) bool {
	return strings.HasPrefix(status, "error")
}

// waitFor runs one wait on a poller and shapes the outcome: the done
// object, a KindErrorState or other terminal error, or on the deadline
// the last observed object with a KindTimeout error.
func waitFor[T any](ctx context.Context, c *cloud, p *poller.Poller[T], op, kind, id string,
	done func(*T) bool, status func(*T) string) (*T, error) {
	return waitOn(ctx, c, p, waitSpec[T]{op: op, kind: kind, id: id, done: done, status: status})
}

// waitSpec is one wait: what is waited on, until what, and the hint key
// (volumeKey, snapshotKey) under which the request that started the
// change was logged.
type waitSpec[T any] struct {
	op, kind, id, key string
	done              func(*T) bool
	status            func(*T) string
	// untilGone makes the resource's disappearance the end of the wait;
	// otherwise it is a KindNotFound error.
	untilGone bool
}

func waitOn[T any](ctx context.Context, c *cloud, p *poller.Poller[T], w waitSpec[T]) (*T, error) {
	start := time.Now()
	var hint poller.Hint
	if w.key != "" {
		hint = c.polls.sent.hint(w.key)
	}
	var last *T
	var lastErr error
	gone := false
	_, _, err := p.WaitHinted(ctx, w.id, hint, func(r poller.Result[T], ferr error) (bool, error) {
		if ferr != nil {
			if rideOut(ferr) {
				lastErr = ferr
				return false, nil
			}
			return true, ferr
		}
		if r.Gone {
			// A delete's end teaches the poller how long deletes take,
			// whatever the caller makes of it.
			gone = true
			if w.untilGone || hint.Kind == changeDeleting {
				return true, nil
			}
			return true, w.notFound()
		}
		v := r.Value
		last = &v
		if w.done(&v) {
			return true, nil
		}
		if s := w.status(&v); isErrorStatus(s) {
			return true, &Error{Kind: KindErrorState, Op: w.op, Resource: w.id, Message: fmt.Sprintf("%s went to status %s", w.kind, s)}
		}
		return false, nil
	})
	if gone {
		last = nil
		if err == nil && !w.untilGone {
			err = w.notFound()
		}
	}
	outcome := "done"
	switch {
	case err == nil:
		if w.key != "" {
			c.polls.sent.done(w.key, hint)
		}
	case ctx.Err() != nil && (err == ctx.Err()):
		outcome = "timeout"
		err = w.timeout(last, lastErr, err)
	default:
		outcome = "error"
		if KindOf(err) == KindErrorState {
			c.addUserMessage(ctx, err, w.id)
		}
	}
	c.obs.ObserveWait(w.op, time.Since(start), outcome)
	return last, err
}

func (w waitSpec[T]) notFound() error {
	return &Error{Kind: KindNotFound, Op: w.op, Resource: w.id, Message: w.kind + " not found", StatusCode: http.StatusNotFound}
}

// timeout is the KindTimeout error for a wait the deadline ended, naming
// the last status seen and the last poll error ridden out.
func (w waitSpec[T]) timeout(last *T, lastErr, ctxErr error) error {
	until := "ready"
	if w.untilGone {
		until = "gone"
	}
	msg := "deadline reached before the " + w.kind + " was " + until
	if last != nil {
		msg = fmt.Sprintf("deadline reached with the %s still %s", w.kind, w.status(last))
	}
	if lastErr != nil {
		msg += "; last poll error: " + lastErr.Error()
	}
	return &Error{Kind: KindTimeout, Op: w.op, Resource: w.id, Message: msg, Err: ctxErr}
}

// addUserMessage appends Cinder's latest user message about id to an
// error-state error: it usually says why (no valid host, quota, backend
// failure). One GET, skipped when the deadline is too close.
func (c *cloud) addUserMessage(ctx context.Context, err error, id string) {
	e, ok := err.(*Error)
	if !ok {
		return
	}
	if dl, has := ctx.Deadline(); has && time.Until(dl) < 500*time.Millisecond {
		return
	}
	m, merr := c.LatestMessage(ctx, id)
	if merr == nil && m != nil && m.UserMessage != "" {
		e.Message += ": " + m.UserMessage
	}
}

func (c *cloud) WaitVolume(ctx context.Context, id string, done func(*Volume) bool) (*Volume, error) {
	return waitOn(ctx, c, c.polls.volumes, waitSpec[Volume]{op: "volume_wait", kind: "volume", id: id, key: volumeKey(id),
		done: done, status: volumeStatus})
}

func (c *cloud) WaitSnapshot(ctx context.Context, id string, done func(*Snapshot) bool) (*Snapshot, error) {
	return waitOn(ctx, c, c.polls.snapshots, waitSpec[Snapshot]{op: "snapshot_wait", kind: "snapshot", id: id, key: snapshotKey(id),
		done: done, status: func(s *Snapshot) string { return s.Status }})
}

func (c *cloud) WaitBackup(ctx context.Context, id string, done func(*Backup) bool) (*Backup, error) {
	b, err := waitFor(ctx, c, c.polls.backups, "backup_wait", "backup", id, done, func(b *Backup) string { return b.Status })
	if KindOf(err) == KindErrorState && b != nil && b.FailReason != "" {
		err.(*Error).Message += ": " + trimMessage(b.FailReason)
	}
	return b, err
}

// WaitVolumeGone waits for a deleted volume to disappear. error_deleting
// ends it with KindErrorState.
func (c *cloud) WaitVolumeGone(ctx context.Context, id string) error {
	_, err := waitOn(ctx, c, c.polls.volumes, waitSpec[Volume]{op: "volume_delete_wait", kind: "volume", id: id, key: volumeKey(id),
		done: func(*Volume) bool { return false }, status: volumeStatus, untilGone: true})
	return err
}

func volumeStatus(v *Volume) string { return v.Status }
