package openstack

import (
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func groupCloudOf(t *testing.T, e *emulator.Emulator) (Cloud, GroupCloud) {
	t.Helper()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	return c, c
}

func TestGroupCallsNeedMicroversion325(t *testing.T) {
	e := startEmulator(t, emulator.Options{MaxCinderMicroversion: "3.24"})
	c, gc := groupCloudOf(t, e)
	ctx := ctxTimeout(t, 30*time.Second)
	if c.Features().Groups {
		t.Fatalf("Groups on at %s", c.Features().CinderMicroversion)
	}
	if _, err := gc.GetGroupType(ctx, emulator.DefaultGroupTypeName); KindOf(err) != KindConfig {
		t.Fatalf("GetGroupType below 3.25: %v, want KindConfig", err)
	}
}

func TestGroupSnapshotCloudCalls(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c, gc := groupCloudOf(t, e)
	ctx := ctxTimeout(t, 60*time.Second)
	if !c.Features().Groups {
		t.Fatalf("Groups off at %s", c.Features().CinderMicroversion)
	}
	gt, err := gc.GetGroupType(ctx, emulator.DefaultGroupTypeName)
	if err != nil || !gt.Consistent {
		t.Fatalf("GetGroupType = %+v, %v", gt, err)
	}
	if _, err := gc.GetGroupType(ctx, "nope"); !IsNotFound(err) {
		t.Fatalf("unknown group type: %v, want not found", err)
	}
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "m", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, err = c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	// Ambiguous creates (500 after the request) are adopted by name and
	// description, not repeated.
	e.SetFaults(emulator.Faults{ErrorRate: 1, OnlyPaths: []string{"POST /volume/v3/{project_id}/groups"}})
	_, err = gc.CreateGroup(ctx, CreateGroupOpts{Name: "g", Description: "ours", GroupType: gt.Name, VolumeTypes: []string{v.VolumeType}})
	e.SetFaults(emulator.Faults{})
	if groups, _ := e.GroupCounts(); groups > 1 {
		t.Fatalf("an ambiguous create made %d groups", groups)
	}
	found, ferr := gc.FindGroupsByName(ctx, "g", "ours")
	if ferr != nil {
		t.Fatal(ferr)
	}
	var g *VolumeGroup
	switch {
	case len(found) == 1:
		g = &found[0]
	case err != nil && len(found) == 0:
		// Every attempt was refused before Cinder acted (a 503).
		if g, err = gc.CreateGroup(ctx, CreateGroupOpts{Name: "g", Description: "ours", GroupType: gt.Name, VolumeTypes: []string{v.VolumeType}}); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("groups named g: %v (create: %v)", found, err)
	}
	ready := func(x *VolumeGroup) bool { return x.Status == GroupAvailable }
	if _, err := gc.WaitGroup(ctx, g.ID, ready); err != nil {
		t.Fatal(err)
	}
	if err := gc.UpdateGroup(ctx, g.ID, UpdateGroupOpts{AddVolumes: []string{v.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroup(ctx, g.ID, ready); err != nil {
		t.Fatal(err)
	}
	if err := gc.UpdateGroup(ctx, g.ID, UpdateGroupOpts{AddVolumes: []string{v.ID}}); KindOf(err) != KindBadRequest {
		t.Fatalf("adding a member again: %v, want bad request (nothing to update)", err)
	}
	if vols, err := gc.GroupVolumes(ctx, g.ID); err != nil || len(vols) != 1 || vols[0] != v.ID {
		t.Fatalf("GroupVolumes = %v, %v", vols, err)
	}
	if got, _ := c.GetVolume(ctx, v.ID); got.GroupID != g.ID {
		t.Fatalf("volume group_id %q, want %s", got.GroupID, g.ID)
	}
	gs, err := gc.CreateGroupSnapshot(ctx, g.ID, "gs", "ours")
	if err != nil {
		t.Fatal(err)
	}
	if gs, err = gc.WaitGroupSnapshot(ctx, gs.ID, func(x *GroupSnapshot) bool { return x.Status == GroupSnapshotAvailable }); err != nil {
		t.Fatal(err)
	}
	members, err := gc.GroupSnapshotMembers(ctx, gs)
	if err != nil || len(members) != 1 || members[0].VolumeID != v.ID || members[0].GroupSnapshotID != gs.ID {
		t.Fatalf("members = %+v, %v", members, err)
	}
	if err := gc.DeleteGroup(ctx, g.ID); KindOf(err) != KindConflict {
		t.Fatalf("delete of a group with a group snapshot: %v, want conflict", err)
	}
	if err := c.DeleteSnapshot(ctx, members[0].ID); KindOf(err) != KindConflict {
		t.Fatalf("delete of a member snapshot: %v, want conflict", err)
	}
	if err := gc.DeleteGroupSnapshot(ctx, gs.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroupSnapshot(ctx, gs.ID, func(*GroupSnapshot) bool { return false }); !IsNotFound(err) {
		t.Fatalf("waiting for the group snapshot to go: %v", err)
	}
	if err := gc.DeleteGroup(ctx, g.ID); KindOf(err) != KindConflict {
		t.Fatalf("delete of a group with volumes: %v, want conflict", err)
	}
	if err := gc.UpdateGroup(ctx, g.ID, UpdateGroupOpts{RemoveVolumes: []string{v.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroup(ctx, g.ID, ready); err != nil {
		t.Fatal(err)
	}
	if err := gc.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroup(ctx, g.ID, func(*VolumeGroup) bool { return false }); !IsNotFound(err) {
		t.Fatalf("waiting for the group to go: %v", err)
	}
}
