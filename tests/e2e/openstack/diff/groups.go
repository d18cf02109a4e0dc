package diff

import (
	"context"
	"fmt"
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
func runGroups(ctx context.Context, t Target, logf func(string, ...any)) (out []Obs, err error) {
	c := t.Client
	prefix := "diff-" + rig.NewUUID()[:8] + "-"
	if err := ensureGroupType(ctx, t); err != nil {
		return nil, err
	}
	var volumes, groups, gsnaps []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, gs := range gsnaps {
			_, _ = c.Do(cctx, rig.Volume, "DELETE", "/group_snapshots/"+gs, "3.14", nil)
			waitGone(cctx, c, "group_snapshots", gs)
		}
		for _, g := range groups {
			_, _ = c.Do(cctx, rig.Volume, "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": joinIDs(volumes)}})
			waitStatus(cctx, c, "groups", g, "available")
			_, _ = c.Do(cctx, rig.Volume, "POST", "/groups/"+g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}})
			waitGone(cctx, c, "groups", g)
		}
		for _, v := range volumes {
			_, _ = c.Do(cctx, rig.Volume, "DELETE", "/volumes/"+v, "3.0", nil)
			waitGone(cctx, c, "volumes", v)
		}
	}()
	step := func(name string) *Obs {
		out = append(out, Obs{Step: name})
		return &out[len(out)-1]
	}
	call := func(o *Obs, method, path, mv string, body any) (*rig.Response, error) {
		r, err := c.Do(ctx, rig.Volume, method, path, mv, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Step, err)
		}
		errorOf(o, r)
		logf("%s %s: %s %s → %d %s", t.Name, o.Step, method, path, r.Status, truncate(string(r.Body), 300))
		return r, nil
	}
	for _, name := range []string{"a", "b"} {
		o := step("volume create " + name)
		r, err := call(o, "POST", "/volumes", "3.0", map[string]any{"volume": map[string]any{"size": 1, "name": prefix + name}})
		if err != nil {
			return out, err
		}
		if r.Status != 202 {
			return out, fmt.Errorf("volume create: %d %s", r.Status, r.Body)
		}
		id := str(field(r, "volume")["id"])
		volumes = append(volumes, id)
		o.States = poll(ctx, c, "volumes", id, []string{str(field(r, "volume")["status"])}, "available", "error")
	}
	a, both := volumes[0], joinIDs(volumes)

	if _, err := call(step("groups at 3.0"), "GET", "/groups", "3.0", nil); err != nil {
		return out, err
	}
	if _, err := call(step("group create, unknown group type"), "POST", "/groups", "3.14",
		map[string]any{"group": map[string]any{"name": prefix + "x", "group_type": "no-such-group-type", "volume_types": []string{"__DEFAULT__"}}}); err != nil {
		return out, err
	}
	if _, err := call(step("group create without volume_types"), "POST", "/groups", "3.14",
		map[string]any{"group": map[string]any{"group_type": groupType}}); err != nil {
		return out, err
	}
	o := step("group create")
	r, err := call(o, "POST", "/groups", "3.14", map[string]any{"group": map[string]any{"name": prefix + "g", "group_type": groupType, "volume_types": []string{"__DEFAULT__"}}})
	if err != nil {
		return out, err
	}
	if r.Status != 202 {
		return out, fmt.Errorf("group create: %d %s", r.Status, r.Body)
	}
	g := str(field(r, "group")["id"])
	groups = append(groups, g)
	o.States = poll(ctx, c, "groups", g, nil, "available", "error")

	if _, err := call(step("group snapshot of an empty group"), "POST", "/group_snapshots", "3.14",
		map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": prefix + "empty"}}); err != nil {
		return out, err
	}
	o = step("add volumes")
	if _, err := call(o, "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"add_volumes": both}}); err != nil {
		return out, err
	}
	o.States = poll(ctx, c, "groups", g, nil, "available", "error")
	if _, err := call(step("add a member again"), "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"add_volumes": a}}); err != nil {
		return out, err
	}
	if _, err := call(step("delete a member volume"), "DELETE", "/volumes/"+a, "3.0", nil); err != nil {
		return out, err
	}
	if err := overSnapshotQuota(ctx, t, step, call, g, prefix); err != nil {
		return out, err
	}
	o = step("group snapshot create")
	r, err = call(o, "POST", "/group_snapshots", "3.14", map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": prefix + "gs"}})
	if err != nil {
		return out, err
	}
	if r.Status != 202 {
		return out, fmt.Errorf("group snapshot create: %d %s", r.Status, r.Body)
	}
	gs := str(field(r, "group_snapshot")["id"])
	gsnaps = append(gsnaps, gs)
	o.States = poll(ctx, c, "group_snapshots", gs, nil, "available", "error")
	members, err := memberSnapshots(ctx, c, prefix+"gs", gs)
	if err != nil {
		return out, err
	}
	o.Extra = fmt.Sprintf("%d member snapshots", len(members))
	if len(members) > 0 {
		if _, err := call(step("delete a member snapshot"), "DELETE", "/snapshots/"+members[0], "3.0", nil); err != nil {
			return out, err
		}
	}
	if _, err := call(step("delete a group with a group snapshot"), "POST", "/groups/"+g+"/action", "3.14",
		map[string]any{"delete": map[string]any{"delete-volumes": false}}); err != nil {
		return out, err
	}
	o = step("remove volumes while the group snapshot stays")
	if _, err := call(o, "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": both}}); err != nil {
		return out, err
	}
	o.States = poll(ctx, c, "groups", g, nil, "available", "error")
	if _, err := call(step("remove a volume not in the group"), "PUT", "/groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": a}}); err != nil {
		return out, err
	}
	o = step("group snapshot delete")
	if _, err := call(o, "DELETE", "/group_snapshots/"+gs, "3.14", nil); err != nil {
		return out, err
	}
	o.States = pollGone(ctx, c, "group_snapshots", gs)
	gsnaps = nil
	left, err := memberSnapshots(ctx, c, prefix+"gs", gs)
	if err != nil {
		return out, err
	}
	o.Extra = fmt.Sprintf("%d member snapshots left", len(left))
	o = step("group delete")
	if _, err := call(o, "POST", "/groups/"+g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}}); err != nil {
		return out, err
	}
	o.States = pollGone(ctx, c, "groups", g)
	groups = nil
	for i, v := range volumes {
		o := step(fmt.Sprintf("volume delete %d", i+1))
		if _, err := call(o, "DELETE", "/volumes/"+v, "3.0", nil); err != nil {
			return out, err
		}
		o.States = pollGone(ctx, c, "volumes", v)
	}
	volumes = nil
	return out, nil
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

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id
	}
	return s
}

// overSnapshotQuota asks for a group snapshot of the two-volume group with
// the snapshots quota set (as admin) to the project's usage plus one:
// Cinder reserves a snapshot per member at once, so it is 413.
func overSnapshotQuota(ctx context.Context, t Target, step func(string) *Obs,
	call func(*Obs, string, string, string, any) (*rig.Response, error), g, prefix string) error {
	c := t.Client
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
	_, err = call(step("group snapshot over the snapshots quota"), "POST", "/group_snapshots", "3.14",
		map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": prefix + "over"}})
	return err
}
