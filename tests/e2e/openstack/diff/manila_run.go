package diff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// manilaRun is one run of a Manila scenario on one cloud: the steps it
// observed, what it made (deleted by cleanup) and the ids one phase hands
// to the next.
type manilaRun struct {
	ctx    context.Context
	t      ManilaTarget
	m      *ManilaClient
	logf   func(string, ...any)
	prefix string
	out    []Obs

	shares, snaps, networks []string
	quotaChanged            bool

	nfs, ceph, ipRule, cephxRule, snap string // runManila's
	sh                                 string // runManilaEdges' share
}

func newManilaRun(ctx context.Context, t ManilaTarget, logf func(string, ...any)) *manilaRun {
	return &manilaRun{ctx: ctx, t: t, m: t.M, logf: logf, prefix: "diff-" + rig.NewUUID()[:8] + "-"}
}

// run runs the phases in order, stops at the first error, and cleans up.
func (mr *manilaRun) run(phases ...func() error) ([]Obs, error) {
	defer mr.cleanup()
	err := runPhases(phases...)
	return mr.out, err
}

// cleanup restores the quota and deletes snapshots, shares (a share stuck
// in error_deleting by the admin's force delete) and share networks.
func (mr *manilaRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m := mr.m
	if mr.quotaChanged {
		_ = mr.t.SetQuota(ctx, nil)
	}
	for _, id := range mr.snaps {
		_, _ = m.Do(ctx, "DELETE", "/snapshots/"+id, manilaMV, nil)
	}
	for _, id := range mr.snaps {
		mpollGone(ctx, m, "/snapshots/"+id, "snapshot", "status")
	}
	for _, id := range mr.shares {
		mpoll(ctx, m, "/shares/"+id, "share", "status", nil, "available", "error", "extending_error", "shrinking_error", "error_deleting")
		_, _ = m.Do(ctx, "DELETE", "/shares/"+id, manilaMV, nil)
	}
	for _, id := range mr.shares {
		if st := mpollGone(ctx, m, "/shares/"+id, "share", "status"); !slices.Contains(st, "gone") && mr.t.ForceDelete != nil {
			_ = mr.t.ForceDelete(ctx, id)
			mpollGone(ctx, m, "/shares/"+id, "share", "status")
		}
	}
	for _, id := range mr.networks {
		_, _ = m.Do(ctx, "DELETE", "/share-networks/"+id, manilaMV, nil)
	}
}

func (mr *manilaRun) step(name string) *Obs {
	mr.out = append(mr.out, Obs{Step: "manila: " + name})
	return &mr.out[len(mr.out)-1]
}

// call sends one request for step o and records its answer; whatever a
// POST made is deleted at the end, refusal or not.
func (mr *manilaRun) call(o *Obs, method, path, mv string, body any) (*rig.Response, error) {
	r, err := mr.m.Do(mr.ctx, method, path, mv, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Step, err)
	}
	errorOf(o, r)
	mr.logf("%s %s: %s %s → %d %s", mr.t.Name, o.Step, method, path, r.Status, truncate(string(r.Body)))
	if method == "POST" {
		if id := str(field(r, "snapshot")["id"]); path == "/snapshots" && id != "" {
			mr.snaps = append(mr.snaps, id)
		}
		if id := str(field(r, "share")["id"]); path == "/shares" && id != "" {
			mr.shares = append(mr.shares, id)
		}
		if id := str(field(r, "share_network")["id"]); path == "/share-networks" && id != "" {
			mr.networks = append(mr.networks, id)
		}
	}
	return r, nil
}

// simple is a step of one call.
func (mr *manilaRun) simple(name, method, path, mv string, body any) error {
	_, err := mr.call(mr.step(name), method, path, mv, body)
	return err
}

// listStep is a step whose answer is a list under key, recorded by
// listFacts.
func (mr *manilaRun) listStep(name, key, method, path, mv string, body any) error {
	o := mr.step(name)
	r, err := mr.call(o, method, path, mv, body)
	if err != nil {
		return err
	}
	o.Extra = listFacts(r, key)
	return nil
}

// createShare is a step that creates a share and follows it to a final
// status.
func (mr *manilaRun) createShare(name string, body map[string]any, final ...string) (string, error) {
	o := mr.step(name)
	body["name"] = mr.prefix + strings.ReplaceAll(name, " ", "-")
	r, err := mr.call(o, "POST", "/shares", manilaMV, map[string]any{"share": body})
	if err != nil {
		return "", err
	}
	sh := field(r, "share")
	id := str(sh["id"])
	if id == "" {
		return "", nil
	}
	o.Extra = fmt.Sprintf("az=%v progress=%v keys=%s", sh["availability_zone"], sh["progress"], keysOf(sh))
	o.States = mpoll(mr.ctx, mr.m, "/shares/"+id, "share", "status", []string{str(sh["status"])}, final...)
	return id, nil
}

// allow is a step that adds an access rule and follows it to active or
// error.
func (mr *manilaRun) allow(name, shareID, typ, to string) (string, error) {
	o := mr.step(name)
	r, err := mr.call(o, "POST", "/shares/"+shareID+"/action", manilaMV,
		map[string]any{"allow_access": map[string]any{"access_type": typ, "access_to": to, "access_level": "rw"}})
	if err != nil || r.Status != 200 {
		return "", err
	}
	a := field(r, "access")
	id := str(a["id"])
	o.States = mpoll(mr.ctx, mr.m, "/share-access-rules/"+id, "access", "state", []string{str(a["state"])}, "active", "error")
	g, _ := mr.m.Do(mr.ctx, "GET", "/share-access-rules/"+id, manilaMV, nil)
	final := field(g, "access")
	o.Extra = fmt.Sprintf("key at allow=%v key at end=%v keys=%s", a["access_key"] != nil, final["access_key"] != nil, keysOf(a))
	return id, nil
}

// shareFacts reads a share once its access_rules_status has settled: the
// rig sets a failed rule's state a moment before the share's
// access_rules_status follows.
func (mr *manilaRun) shareFacts(name, id string) error {
	o := mr.step(name)
	mpollSettled(mr.ctx, mr.m, "/shares/"+id, "share", "access_rules_status", "syncing")
	r, err := mr.call(o, "GET", "/shares/"+id, manilaMV, nil)
	if err != nil {
		return err
	}
	sh := field(r, "share")
	o.Extra = fmt.Sprintf("status=%v size=%v access_rules_status=%v az=%v keys=%s", sh["status"], sh["size"], sh["access_rules_status"],
		sh["availability_zone"], keysOf(sh))
	return nil
}
