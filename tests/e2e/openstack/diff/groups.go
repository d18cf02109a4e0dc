package diff

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// groupType is the group type both clouds snapshot groups with: seeded in
// the emulator, created on the rig (admin) when missing and kept, as the
// rig's configuration for volume group snapshots.
const groupType = emulator.DefaultGroupTypeName

// ensureGroupType makes sure t's cloud has groupType with
// consistent_group_snapshot_enabled; it records no observation.
func ensureGroupType(ctx context.Context, t Target) error {
	return rig.EnsureGroupType(ctx, t.Admin, groupType)
}

// runGroups is the group scenario: generic volume groups and group
// snapshots, with the refusals the driver's design relies on (a volume in
// one group at most, no delete of a member volume or member snapshot, no
// delete of a group with group snapshots, volumes removable while the
// group snapshot stays). Everything it creates is deleted before it
// returns, also on failure.
func runGroups(ctx context.Context, t Target, logf func(string, ...any)) ([]Obs, error) {
	if err := ensureGroupType(ctx, t); err != nil {
		return nil, err
	}
	gr := &groupRun{cinderRun: newCinderRun(ctx, t, logf)}
	defer gr.cleanup()
	err := runPhases(gr.createPhase, gr.membersPhase, gr.snapshotPhase, gr.deletePhase)
	return gr.out, err
}

// groupRun is one run of the group scenario: a cinderRun (steps, volumes)
// with the groups and group snapshots it made and the ids the phases
// share.
type groupRun struct {
	*cinderRun
	groups, gsnaps []string
	g, gs          string // the group and its group snapshot
}

// cleanup deletes the group snapshots, empties and deletes the groups,
// then deletes the volumes.
func (gr *groupRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := gr.c
	for _, gs := range gr.gsnaps {
		_, _ = c.Do(ctx, rig.Volume, "DELETE", "/group_snapshots/"+gs, "3.14", nil)
		waitGone(ctx, c, "group_snapshots", gs)
	}
	for _, g := range gr.groups {
		_, _ = c.Do(ctx, rig.Volume, "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": strings.Join(gr.volumes, ",")}})
		waitStatus(ctx, c, "groups", g, "available")
		_, _ = c.Do(ctx, rig.Volume, "POST", "/groups/"+g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}})
		waitGone(ctx, c, "groups", g)
	}
	gr.cinderRun.cleanup()
}

// simple is a step of one Cinder call.
func (gr *groupRun) simple(name, method, path, mv string, body any) error {
	return gr.cinderRun.simple(name, rig.Volume, method, path, mv, body)
}

// pollStep is a step of one Cinder call followed until the group is
// available or in error.
func (gr *groupRun) pollStep(name, method, path string, body any) error {
	o := gr.step(name)
	if _, err := gr.call(o, rig.Volume, method, path, "3.14", body); err != nil {
		return err
	}
	o.States = poll(gr.ctx, gr.c, "groups", gr.g, nil, "available", "error")
	return nil
}

// createPhase: two volumes, the refused group creates, and the group.
func (gr *groupRun) createPhase() error {
	for _, name := range []string{"a", "b"} {
		if _, err := gr.createVolume(name, 1); err != nil {
			return err
		}
	}
	prefix := gr.prefix
	if err := gr.simple("groups at 3.0", "GET", "/groups", "3.0", nil); err != nil {
		return err
	}
	if err := gr.simple("group create, unknown group type", "POST", "/groups", "3.14",
		map[string]any{"group": map[string]any{"name": prefix + "x", "group_type": "no-such-group-type", "volume_types": []string{"__DEFAULT__"}}}); err != nil {
		return err
	}
	if err := gr.simple("group create without volume_types", "POST", "/groups", "3.14",
		map[string]any{"group": map[string]any{"group_type": groupType}}); err != nil {
		return err
	}
	o := gr.step("group create")
	r, err := gr.call(o, rig.Volume, "POST", "/groups", "3.14", map[string]any{"group": map[string]any{"name": prefix + "g", "group_type": groupType, "volume_types": []string{"__DEFAULT__"}}})
	if err != nil {
		return err
	}
	if r.Status != 202 {
		return fmt.Errorf("group create: %d %s", r.Status, r.Body)
	}
	gr.g = str(field(r, "group")["id"])
	gr.groups = append(gr.groups, gr.g)
	o.States = poll(gr.ctx, gr.c, "groups", gr.g, nil, "available", "error")
	return nil
}

// membersPhase: membership and its refusals, and the snapshots quota.
func (gr *groupRun) membersPhase() error {
	g, a := gr.g, gr.volumes[0]
	if err := gr.simple("group snapshot of an empty group", "POST", "/group_snapshots", "3.14",
		map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": gr.prefix + "empty"}}); err != nil {
		return err
	}
	if err := gr.pollStep("add volumes", "PUT", "/groups/"+g, map[string]any{"group": map[string]any{"add_volumes": strings.Join(gr.volumes, ",")}}); err != nil {
		return err
	}
	if err := gr.simple("add a member again", "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"add_volumes": a}}); err != nil {
		return err
	}
	if err := gr.simple("delete a member volume", "DELETE", "/volumes/"+a, "3.0", nil); err != nil {
		return err
	}
	return gr.overSnapshotQuota()
}

// snapshotPhase: the group snapshot and the refusals it brings.
func (gr *groupRun) snapshotPhase() error {
	g, a := gr.g, gr.volumes[0]
	o := gr.step("group snapshot create")
	r, err := gr.call(o, rig.Volume, "POST", "/group_snapshots", "3.14", map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": gr.prefix + "gs"}})
	if err != nil {
		return err
	}
	if r.Status != 202 {
		return fmt.Errorf("group snapshot create: %d %s", r.Status, r.Body)
	}
	gr.gs = str(field(r, "group_snapshot")["id"])
	gr.gsnaps = append(gr.gsnaps, gr.gs)
	o.States = poll(gr.ctx, gr.c, "group_snapshots", gr.gs, nil, "available", "error")
	members, err := memberSnapshots(gr.ctx, gr.c, gr.prefix+"gs", gr.gs)
	if err != nil {
		return err
	}
	o.Extra = fmt.Sprintf("%d member snapshots", len(members))
	if len(members) > 0 {
		if err := gr.simple("delete a member snapshot", "DELETE", "/snapshots/"+members[0], "3.0", nil); err != nil {
			return err
		}
	}
	if err := gr.simple("delete a group with a group snapshot", "POST", "/groups/"+g+"/action", "3.14",
		map[string]any{"delete": map[string]any{"delete-volumes": false}}); err != nil {
		return err
	}
	if err := gr.pollStep("remove volumes while the group snapshot stays", "PUT", "/groups/"+g,
		map[string]any{"group": map[string]any{"remove_volumes": strings.Join(gr.volumes, ",")}}); err != nil {
		return err
	}
	return gr.simple("remove a volume not in the group", "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": a}})
}

// deletePhase: the group snapshot, the group and the volumes deleted, with
// their states.
func (gr *groupRun) deletePhase() error {
	o := gr.step("group snapshot delete")
	if _, err := gr.call(o, rig.Volume, "DELETE", "/group_snapshots/"+gr.gs, "3.14", nil); err != nil {
		return err
	}
	o.States = pollGone(gr.ctx, gr.c, "group_snapshots", gr.gs)
	gr.gsnaps = nil
	left, err := memberSnapshots(gr.ctx, gr.c, gr.prefix+"gs", gr.gs)
	if err != nil {
		return err
	}
	o.Extra = fmt.Sprintf("%d member snapshots left", len(left))
	o = gr.step("group delete")
	if _, err := gr.call(o, rig.Volume, "POST", "/groups/"+gr.g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}}); err != nil {
		return err
	}
	o.States = pollGone(gr.ctx, gr.c, "groups", gr.g)
	gr.groups = nil
	return gr.deleteVolumes()
}

// memberSnapshots lists the snapshots named like a group snapshot that
// belong to it.
func memberSnapshots(ctx context.Context, c *rig.Client, name, gs string) ([]string, error) {
	r, err := c.Do(ctx, rig.Volume, "GET", "/snapshots/detail?name="+name, "3.14", nil)
	if err != nil {
		return nil, err
	}
	var ids []string
	if list, ok := r.JSON()["snapshots"].([]any); ok {
		for _, x := range list {
			if m, _ := x.(map[string]any); str(m["group_snapshot_id"]) == gs {
				ids = append(ids, str(m["id"]))
			}
		}
	}
	return ids, nil
}

// overSnapshotQuota asks for a group snapshot of the two-volume group with
// the snapshots quota set (as admin) to the project's usage plus one:
// Cinder reserves a snapshot per member at once, so it is 413.
func (gr *groupRun) overSnapshotQuota() error {
	ctx, t, c := gr.ctx, gr.t, gr.c
	r, err := c.Do(ctx, rig.Volume, "GET", "/os-quota-sets/"+c.ProjectID+"?usage=true", "3.0", nil)
	if err != nil || r.Status != 200 {
		return fmt.Errorf("quota get: %v %v", err, r)
	}
	qs := field(r, "quota_set")
	snaps, _ := qs["snapshots"].(map[string]any)
	used := int(num(snaps["in_use"])) + int(num(snaps["reserved"]))
	old := int(num(snaps["limit"]))
	set := func(n int) error {
		r, err := t.Admin.Do(ctx, rig.Volume, "PUT", "/os-quota-sets/"+c.ProjectID, "3.0", map[string]any{"quota_set": map[string]any{"snapshots": n}})
		if err != nil {
			return err
		}
		if r.Status != 200 {
			return fmt.Errorf("quota set: %d %s", r.Status, r.Body)
		}
		return nil
	}
	if err := set(used + 1); err != nil {
		return err
	}
	defer func() { _ = set(old) }()
	return gr.simple("group snapshot over the snapshots quota", "POST", "/group_snapshots", "3.14",
		map[string]any{"group_snapshot": map[string]any{"group_id": gr.g, "name": gr.prefix + "over"}})
}
