package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

// Manila waits, on the shared poller: one poller per cloud for shares,
// one for share snapshots and one for access rules. Concurrent waits on
// shares or snapshots are answered by one shares/detail (snapshots/detail)
// listing per tick; concurrent waits on rules of one share by one listing
// of that share's rules, so the publish of a share to ten nodes polls one
// list, not ten rules.
//
// The schedule is the volumes' (waits.go): the rig's Manila answers a
// create in 0.9-1.1 s, an extend in 0.3-0.4 s, a snapshot in 0.4-0.8 s,
// a delete in 1-2 s and a restore in 10-18 s (../shared/reference/
// manila.md), the same span as Cinder's, for which the proportional 8 %
// schedule was measured. Access rules become active in 1.0-1.2 s and are
// gone after a deny in 1.3-5 s, also inside it.
var (
	sharePollConfig  = volumePollConfig
	accessPollConfig = poller.Config{Initial: 100 * time.Millisecond, Factor: 2, Max: 5 * time.Second,
		MinGap: 200 * time.Millisecond, GapWaiters: 4, FetchTimeout: 30 * time.Second, Fraction: 0.08}
)

type sharePollers struct {
	shares    *poller.Poller[Share]
	snapshots *poller.Poller[ShareSnapshot]
	// access is keyed by share id: one fetch lists every rule of it.
	access *poller.Poller[[]AccessRule]
}

func newSharePollers(c *cloud) *sharePollers {
	return &sharePollers{
		shares: poller.New(batchFetch(func(ctx context.Context, id string) (Share, error) {
			return value(c.getShare(ctx, "share_poll", id))
		}, func(ctx context.Context) ([]Share, error) {
			return c.listAllShares(ctx, "share_poll", ShareListOpts{})
		}, func(s Share) string { return s.ID }), sharePollConfig).LearnBy(func(r poller.Result[Share]) string { return r.Value.Status }),
		snapshots: poller.New(batchFetch(func(ctx context.Context, id string) (ShareSnapshot, error) {
			return value(c.getShareSnapshot(ctx, "share_snapshot_poll", id))
		}, func(ctx context.Context) ([]ShareSnapshot, error) {
			return c.listAllShareSnapshots(ctx, "share_snapshot_poll", ShareListOpts{})
		}, func(s ShareSnapshot) string { return s.ID }), sharePollConfig).LearnBy(func(r poller.Result[ShareSnapshot]) string { return r.Value.Status }),
		access: poller.New(c.fetchAccessRules, accessPollConfig),
	}
}

// fetchAccessRules lists the rules of each asked share; a share that is
// gone is Gone.
func (c *cloud) fetchAccessRules(ctx context.Context, shareIDs []string) (map[string]poller.Result[[]AccessRule], error) {
	out := make(map[string]poller.Result[[]AccessRule], len(shareIDs))
	for _, id := range shareIDs {
		rules, err := c.listAccessRules(ctx, "share_access_poll", id)
		switch {
		case IsNotFound(err):
			out[id] = poller.Result[[]AccessRule]{Gone: true}
		case err != nil:
			return nil, err
		default:
			out[id] = poller.Result[[]AccessRule]{Value: rules}
		}
	}
	return out, nil
}

// sharePoll runs one wait: step judges each observation; fetch errors that
// pass are ridden out. On the deadline the error is KindTimeout and says,
// through where(), what was last seen.
func sharePoll[T any](ctx context.Context, c *cloud, p *poller.Poller[T], op, id string,
	step func(poller.Result[T]) (bool, error), where func() string) error {
	start := time.Now()
	var lastErr error
	_, _, err := p.Wait(ctx, id, func(r poller.Result[T], ferr error) (bool, error) {
		if ferr != nil {
			if rideOut(ferr) {
				lastErr = ferr
				return false, nil
			}
			return true, ferr
		}
		return step(r)
	})
	outcome := "done"
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		outcome = "timeout"
		msg := "deadline reached " + where()
		if lastErr != nil {
			msg += "; last poll error: " + lastErr.Error()
		}
		err = &Error{Kind: KindTimeout, Op: op, Resource: id, Message: msg, Err: err}
	default:
		outcome = "error"
	}
	c.obs.ObserveWait(op, time.Since(start), outcome)
	return err
}

func notFound(op, id, what string) error {
	return &Error{Kind: KindNotFound, Op: op, Resource: id, Message: what + " not found", StatusCode: http.StatusNotFound}
}

func errorState(op, id, what, status string) error {
	return &Error{Kind: KindErrorState, Op: op, Resource: id, Message: fmt.Sprintf("%s went to status %s", what, status)}
}

// stillWhere renders where a resource got to for a timeout message.
func stillWhere(what string, seen bool, status string) string {
	if !seen {
		return "before the " + what + " was seen"
	}
	return "with the " + what + " still " + status
}

func (c *cloud) WaitShare(ctx context.Context, id string, done func(*Share) bool) (*Share, error) {
	return waitShareKind(ctx, c, c.sharePolls.shares, "share_wait", "share", id, done, func(s *Share) string { return s.Status })
}

// WaitShareGone waits until the share is not found; error_deleting (or any
// error status) ends it with KindErrorState.
func (c *cloud) WaitShareGone(ctx context.Context, id string) error {
	return waitShareKindGone(ctx, c, c.sharePolls.shares, "share_delete_wait", "share", id, func(s *Share) string { return s.Status })
}

func (c *cloud) WaitShareSnapshot(ctx context.Context, id string, done func(*ShareSnapshot) bool) (*ShareSnapshot, error) {
	return waitShareKind(ctx, c, c.sharePolls.snapshots, "share_snapshot_wait", "share snapshot", id, done,
		func(s *ShareSnapshot) string { return s.Status })
}

func (c *cloud) WaitShareSnapshotGone(ctx context.Context, id string) error {
	return waitShareKindGone(ctx, c, c.sharePolls.snapshots, "share_snapshot_delete_wait", "share snapshot", id,
		func(s *ShareSnapshot) string { return s.Status })
}

// waitShareKind waits until done says a share or snapshot (what) is
// ready; an error status is KindErrorState and its disappearance
// KindNotFound, both with Manila's latest user message about it.
func waitShareKind[T any](ctx context.Context, c *cloud, p *poller.Poller[T], op, what, id string,
	done func(*T) bool, status func(*T) string) (*T, error) {
	var last *T
	err := sharePoll(ctx, c, p, op, id, func(r poller.Result[T]) (bool, error) {
		if r.Gone {
			last = nil
			return true, notFound(op, id, what)
		}
		v := r.Value
		last = &v
		if done(&v) {
			return true, nil
		}
		if s := status(&v); isShareErrorStatus(s) {
			return true, errorState(op, id, what, s)
		}
		return false, nil
	}, func() string { return stillWhereLast(what, last, status) })
	c.addShareMessage(ctx, err, id, time.Time{})
	return last, err
}

// waitShareKindGone waits until a share or snapshot (what) is not found;
// an error status (error_deleting) ends it with KindErrorState.
func waitShareKindGone[T any](ctx context.Context, c *cloud, p *poller.Poller[T], op, what, id string, status func(*T) string) error {
	var last *T
	err := sharePoll(ctx, c, p, op, id, func(r poller.Result[T]) (bool, error) {
		if r.Gone {
			return true, nil
		}
		v := r.Value
		last = &v
		if s := status(&v); isShareErrorStatus(s) {
			return true, errorState(op, id, what, s)
		}
		return false, nil
	}, func() string { return stillWhereLast(what, last, status) })
	c.addShareMessage(ctx, err, id, time.Time{})
	return err
}

// stillWhereLast is stillWhere for the last value seen (nil: none).
func stillWhereLast[T any](what string, last *T, status func(*T) string) string {
	if last == nil {
		return stillWhere(what, false, "")
	}
	return stillWhere(what, true, status(last))
}

// accessReady: active, and for cephx with its key (which Manila fills in
// after the rule is applied).
func accessReady(r *AccessRule) bool {
	return r.State == AccessActive && (r.AccessType != AccessTypeCephx || r.AccessKey != "")
}

// WaitAccessRule waits until the rule is active (and a cephx rule has its
// access_key). A rule in error is KindErrorState with Manila's message; a
// rule or share that disappears is KindNotFound.
func (c *cloud) WaitAccessRule(ctx context.Context, shareID, accessID string) (*AccessRule, error) {
	const op = "share_access_wait"
	var last *AccessRule
	err := sharePoll(ctx, c, c.sharePolls.access, op, shareID, func(r poller.Result[[]AccessRule]) (bool, error) {
		if r.Gone {
			return true, notFound(op, shareID, "share")
		}
		rule := findRule(r.Value, accessID)
		if rule == nil {
			last = nil
			return true, notFound(op, accessID, "access rule")
		}
		last = rule
		switch {
		case accessReady(rule):
			return true, nil
		case rule.State == AccessError:
			return true, errorState(op, accessID, "access rule", rule.State)
		}
		return false, nil
	}, func() string {
		switch {
		case last == nil:
			return "before the access rule was seen"
		case last.State == AccessActive:
			return "with the access rule active but its access_key not yet issued"
		}
		return "with the access rule still " + last.State
	})
	if KindOf(err) == KindErrorState {
		since := time.Time{}
		if last != nil {
			since = last.CreatedAt
		}
		// Manila files an access failure under the rule or, by some
		// drivers, under the share; a share message older than the rule
		// is about something else.
		if !c.addShareMessage(ctx, err, accessID, time.Time{}) {
			c.addShareMessage(ctx, err, shareID, since)
		}
	}
	return last, err
}

func findRule(rules []AccessRule, id string) *AccessRule {
	for i := range rules {
		if rules[i].ID == id {
			r := rules[i]
			return &r
		}
	}
	return nil
}

// WaitAccessRuleGone waits until the rule is no longer in the share's
// list (or the share is gone). A rule that went to error while denied is
// KindErrorState.
func (c *cloud) WaitAccessRuleGone(ctx context.Context, shareID, accessID string) error {
	const op = "share_access_deny_wait"
	state := ""
	err := sharePoll(ctx, c, c.sharePolls.access, op, shareID, func(r poller.Result[[]AccessRule]) (bool, error) {
		if r.Gone {
			return true, nil
		}
		rule := findRule(r.Value, accessID)
		if rule == nil {
			return true, nil
		}
		state = rule.State
		if state == AccessError {
			return true, errorState(op, accessID, "access rule", state)
		}
		return false, nil
	}, func() string {
		if state == "" {
			return "before the access rule was seen"
		}
		return "with the access rule still " + state
	})
	if KindOf(err) == KindErrorState {
		c.addShareMessage(ctx, err, accessID, time.Time{})
	}
	return err
}

// addShareMessage appends Manila's latest user message about id (newer
// than since, when set) to an error-state error: it says why (no valid
// host, quota, backend failure). One GET, skipped when the deadline is
// too close. It reports whether a message was added.
func (c *cloud) addShareMessage(ctx context.Context, err error, id string, since time.Time) bool {
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindErrorState {
		return false
	}
	if dl, has := ctx.Deadline(); has && time.Until(dl) < 500*time.Millisecond {
		return false
	}
	m, merr := c.LatestShareMessage(ctx, id)
	if merr != nil || m == nil || m.UserMessage == "" || (!since.IsZero() && m.CreatedAt.Before(since)) {
		return false
	}
	e.Message += ": " + trimMessage(m.UserMessage)
	return true
}
