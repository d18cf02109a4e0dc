package cinder

import (
	"context"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

var groupClass = map[string]string{"group-type": emulator.DefaultGroupTypeName}

type groupEnv struct {
	*controllerEnv
	gs *GroupControllerServer
}

func newGroupEnv(t *testing.T, opts ...envOption) *groupEnv {
	e := newControllerEnv(t, opts...)
	return &groupEnv{controllerEnv: e, gs: NewGroupControllerServer(e.cs)}
}

func (e *groupEnv) groupCloud() openstack.GroupCloud {
	c, err := e.cs.clouds.Get("")
	if err != nil {
		e.t.Fatal(err)
	}
	return c.(openstack.GroupCloud)
}

// mustGroupSnapshot polls CreateVolumeGroupSnapshot, as the snapshotter
// does, until it is ready; retryable codes are retried.
func (e *groupEnv) mustGroupSnapshot(ctx context.Context, name string, vols ...string) *csi.VolumeGroupSnapshot {
	e.t.Helper()
	for {
		resp, err := e.gs.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: vols, Parameters: groupClass})
		if err != nil && !retryableCode(status.Code(err)) {
			e.t.Fatalf("CreateVolumeGroupSnapshot %s: %v", name, err)
		}
		if err == nil && resp.GetGroupSnapshot().GetReadyToUse() {
			return resp.GetGroupSnapshot()
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("group snapshot %s not ready before the test deadline (last error %v)", name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *groupEnv) mustDeleteGroupSnapshot(ctx context.Context, id string) {
	e.t.Helper()
	for {
		_, err := e.gs.DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: id})
		if err == nil {
			return
		}
		if !retryableCode(status.Code(err)) || ctx.Err() != nil {
			e.t.Fatalf("DeleteVolumeGroupSnapshot %s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func retryableCode(c codes.Code) bool {
	return c == codes.Aborted || c == codes.Unavailable || c == codes.DeadlineExceeded
}

// assertNoGroupLeft checks the emulator holds no group, group snapshot or
// snapshot.
func (e *groupEnv) assertNoGroupLeft() {
	e.t.Helper()
	groups, gsnaps := e.emu.GroupCounts()
	if groups != 0 || gsnaps != 0 || len(e.emu.Snapshots()) != 0 {
		e.t.Fatalf("left behind: %d groups, %d group snapshots, %d snapshots", groups, gsnaps, len(e.emu.Snapshots()))
	}
}

func TestGroupSnapshotLifecycleReleasesVolumesAndLeavesNothing(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("data", 1), e.mustCreate("wal", 1)
	vgs := e.mustGroupSnapshot(ctx, "vgs-1", b, a)
	if len(vgs.GetSnapshots()) != 2 {
		t.Fatalf("members %v, want 2", vgs.GetSnapshots())
	}
	for _, s := range vgs.GetSnapshots() {
		if !s.GetReadyToUse() || s.GetGroupSnapshotId() != vgs.GetGroupSnapshotId() || (s.GetSourceVolumeId() != a && s.GetSourceVolumeId() != b) {
			t.Fatalf("member %v", s)
		}
	}
	for _, v := range []string{a, b} {
		if g := e.emu.VolumeGroupID(v); g != "" {
			t.Fatalf("volume %s still in group %s after the group snapshot was ready", v, g)
		}
	}
	again, err := e.gs.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: "vgs-1", SourceVolumeIds: []string{a, b}, Parameters: groupClass})
	if err != nil || again.GetGroupSnapshot().GetGroupSnapshotId() != vgs.GetGroupSnapshotId() {
		t.Fatalf("repeated create: %v, %v; want the same group snapshot", again, err)
	}
	// ListSnapshots and GetSnapshot name the group snapshot of a member, so
	// that the CO never deletes it on its own (CSI spec, Snapshot).
	member := vgs.GetSnapshots()[0].GetSnapshotId()
	listed, err := e.cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: member})
	if err != nil || len(listed.GetEntries()) != 1 || listed.GetEntries()[0].GetSnapshot().GetGroupSnapshotId() != vgs.GetGroupSnapshotId() {
		t.Fatalf("ListSnapshots of a member: %v, %v; want its group snapshot id", listed, err)
	}
	if one, err := e.cs.GetSnapshot(ctx, &csi.GetSnapshotRequest{SnapshotId: member}); err != nil || one.GetSnapshot().GetGroupSnapshotId() != vgs.GetGroupSnapshotId() {
		t.Fatalf("GetSnapshot of a member: %v, %v", one, err)
	}
	got, err := e.gs.GetVolumeGroupSnapshot(ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId()})
	if err != nil || !got.GetGroupSnapshot().GetReadyToUse() || len(got.GetGroupSnapshot().GetSnapshots()) != 2 {
		t.Fatalf("GetVolumeGroupSnapshot: %v, %v", got, err)
	}
	// A member restores like any snapshot.
	req := createReq("restored", 1)
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: vgs.GetSnapshots()[0].GetSnapshotId()}}}
	restored, err := e.cs.CreateVolume(ctx, req)
	if err != nil {
		t.Fatalf("restore from member: %v", err)
	}
	// The same volumes can be in the next group snapshot at once.
	second := e.mustGroupSnapshot(ctx, "vgs-2", a, b)
	if _, err := e.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: restored.GetVolume().GetVolumeId()}); err != nil {
		t.Fatalf("DeleteVolume restored: %v", err)
	}
	e.mustDeleteGroupSnapshot(ctx, vgs.GetGroupSnapshotId())
	e.mustDeleteGroupSnapshot(ctx, second.GetGroupSnapshotId())
	e.mustDeleteGroupSnapshot(ctx, second.GetGroupSnapshotId())
	e.assertNoGroupLeft()
	if _, err := e.gs.GetVolumeGroupSnapshot(ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("Get after delete: %v, want NotFound", err)
	}
	for _, v := range []string{a, b} {
		if _, err := e.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v}); err != nil {
			t.Fatalf("DeleteVolume %s after the group snapshots: %v", v, err)
		}
	}
}

func TestCreateVolumeGroupSnapshotRefusals(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("a", 1), e.mustCreate("b", 1)
	e.mustGroupSnapshot(ctx, "taken", a)
	tests := []struct {
		name string
		req  *csi.CreateVolumeGroupSnapshotRequest
		want codes.Code
	}{
		{"no name", &csi.CreateVolumeGroupSnapshotRequest{SourceVolumeIds: []string{a}, Parameters: groupClass}, codes.InvalidArgument},
		{"no volumes", &csi.CreateVolumeGroupSnapshotRequest{Name: "x", Parameters: groupClass}, codes.InvalidArgument},
		{"no group type", &csi.CreateVolumeGroupSnapshotRequest{Name: "x", SourceVolumeIds: []string{a}}, codes.InvalidArgument},
		{"unknown group type", &csi.CreateVolumeGroupSnapshotRequest{Name: "x", SourceVolumeIds: []string{a}, Parameters: map[string]string{"group-type": "nope"}}, codes.InvalidArgument},
		{"unknown parameter", &csi.CreateVolumeGroupSnapshotRequest{Name: "x", SourceVolumeIds: []string{a}, Parameters: map[string]string{"group-type": "csi-consistent", "x": "y"}}, codes.InvalidArgument},
		{"missing volume", &csi.CreateVolumeGroupSnapshotRequest{Name: "x", SourceVolumeIds: []string{a, "8f0e6a52-1c3b-4d2e-9f8a-7b6c5d4e3f21"}, Parameters: groupClass}, codes.NotFound},
		{"same name, other volumes", &csi.CreateVolumeGroupSnapshotRequest{Name: "taken", SourceVolumeIds: []string{a, b}, Parameters: groupClass}, codes.AlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.gs.CreateVolumeGroupSnapshot(ctx, tt.req)
			ctCode(t, err, tt.want)
		})
	}
	if groups, gsnaps := e.emu.GroupCounts(); groups != 1 || gsnaps != 1 {
		t.Fatalf("refusals changed the cloud: %d groups, %d group snapshots, want the one of \"taken\"", groups, gsnaps)
	}
}

func TestVolumeInAUsersGroupIsFailedPrecondition(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("a", 1), e.mustCreate("b", 1)
	gc := e.groupCloud()
	v, err := e.cs.clouds.Get("")
	if err != nil {
		t.Fatal(err)
	}
	vol, _ := v.GetVolume(ctx, a)
	users, err := gc.CreateGroup(ctx, openstack.CreateGroupOpts{Name: "users", GroupType: emulator.DefaultGroupTypeName, VolumeTypes: []string{vol.VolumeType}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroup(ctx, users.ID, func(g *openstack.VolumeGroup) bool { return g.Status == openstack.GroupAvailable }); err != nil {
		t.Fatal(err)
	}
	if err := gc.UpdateGroup(ctx, users.ID, openstack.UpdateGroupOpts{AddVolumes: []string{a}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroup(ctx, users.ID, func(g *openstack.VolumeGroup) bool { return g.Status == openstack.GroupAvailable }); err != nil {
		t.Fatal(err)
	}
	_, err = e.gs.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: "vgs", SourceVolumeIds: []string{a, b}, Parameters: groupClass})
	ctCode(t, err, codes.FailedPrecondition)
	if groups, _ := e.emu.GroupCounts(); groups != 1 || e.emu.VolumeGroupID(b) != "" {
		t.Fatalf("the refusal created a group (%d groups) or moved volume b (%q)", groups, e.emu.VolumeGroupID(b))
	}
}

func TestGroupSnapshotUnknownIDs(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	const missing = "3b1f6e2a-9c4d-4e8f-a1b2-c3d4e5f60718"
	if _, err := e.gs.GetVolumeGroupSnapshot(ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: missing}); status.Code(err) != codes.NotFound {
		t.Fatalf("Get unknown: %v, want NotFound", err)
	}
	if _, err := e.gs.DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: missing}); err != nil {
		t.Fatalf("Delete unknown: %v, want success", err)
	}
	_, err := e.gs.DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{})
	ctCode(t, err, codes.InvalidArgument)
}

// A crash between the group snapshot's delete and its group's is healed by
// the retried DeleteVolumeGroupSnapshot, which finds the group by its mark.
func TestDeleteRetryAfterLosingTheGroupSnapshotDeletesTheCarrierGroup(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a := e.mustCreate("a", 1)
	vgs := e.mustGroupSnapshot(ctx, "vgs", a)
	gc := e.groupCloud()
	if err := gc.DeleteGroupSnapshot(ctx, vgs.GetGroupSnapshotId()); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.WaitGroupSnapshot(ctx, vgs.GetGroupSnapshotId(), func(*openstack.GroupSnapshot) bool { return false }); !openstack.IsNotFound(err) {
		t.Fatalf("waiting for the group snapshot to go: %v", err)
	}
	if groups, _ := e.emu.GroupCounts(); groups != 1 {
		t.Fatalf("%d groups before the retry, want the carrier", groups)
	}
	e.mustDeleteGroupSnapshot(ctx, vgs.GetGroupSnapshotId())
	e.assertNoGroupLeft()
}

// With 10 % of requests failing (500, 503, 429), create and delete retried
// as the snapshotter retries them converge and leave nothing behind.
func TestGroupSnapshotsUnderInjectedFaultsLeaveNothing(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("a", 1), e.mustCreate("b", 1)
	e.emu.SetFaults(emulator.Faults{ErrorRate: 0.07, RateLimitRate: 0.03, RetryAfter: time.Millisecond})
	before := total(e.calls())
	var ids []string
	for _, name := range []string{"f1", "f2", "f3", "f4", "f5"} {
		ids = append(ids, e.mustGroupSnapshot(ctx, name, a, b).GetGroupSnapshotId())
	}
	for _, id := range ids {
		e.mustDeleteGroupSnapshot(ctx, id)
	}
	e.emu.SetFaults(emulator.Faults{})
	t.Logf("5 group snapshots taken and deleted in %d API requests with 10%% failing", total(e.calls())-before)
	e.assertNoGroupLeft()
	for _, v := range []string{a, b} {
		if g := e.emu.VolumeGroupID(v); g != "" {
			t.Fatalf("volume %s left in group %s", v, g)
		}
	}
}

func TestGroupControllerCapabilities(t *testing.T) {
	e := newGroupEnv(t)
	resp, err := e.gs.GroupControllerGetCapabilities(e.ctx(), &csi.GroupControllerGetCapabilitiesRequest{})
	if err != nil || len(resp.GetCapabilities()) != 1 ||
		resp.GetCapabilities()[0].GetRpc().GetType() != csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT {
		t.Fatalf("capabilities %v, %v", resp, err)
	}
}

// Two group snapshots of overlapping volumes at once: one waits (Aborted)
// while the other holds the shared volume, both end ready, and deleting
// them leaves nothing.
func TestOverlappingGroupSnapshotsBothSucceed(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b, c := e.mustCreate("a", 1), e.mustCreate("b", 1), e.mustCreate("c", 1)
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 2)
	take := func(name string, vols ...string) {
		for {
			resp, err := e.gs.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: vols, Parameters: groupClass})
			if err == nil && resp.GetGroupSnapshot().GetReadyToUse() {
				done <- result{id: resp.GetGroupSnapshot().GetGroupSnapshotId()}
				return
			}
			if (err != nil && !retryableCode(status.Code(err))) || ctx.Err() != nil {
				done <- result{err: err}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	go take("left", a, b)
	go take("right", b, c)
	var ids []string
	for i := 0; i < 2; i++ {
		r := <-done
		if r.err != nil {
			t.Fatalf("CreateVolumeGroupSnapshot: %v", r.err)
		}
		ids = append(ids, r.id)
	}
	for _, id := range ids {
		e.mustDeleteGroupSnapshot(ctx, id)
	}
	e.assertNoGroupLeft()
}

// A group snapshot over the snapshots quota is ResourceExhausted and
// leaves neither the carrier group nor the volumes in it.
func TestGroupSnapshotOverQuotaLeavesNoGroup(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("a", 1), e.mustCreate("b", 1)
	e.emu.SetQuota("demo", -1, -1, 1, -1)
	_, err := e.gs.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: "big", SourceVolumeIds: []string{a, b}, Parameters: groupClass})
	ctCode(t, err, codes.ResourceExhausted)
	e.assertNoGroupLeft()
	if e.emu.VolumeGroupID(a) != "" || e.emu.VolumeGroupID(b) != "" {
		t.Fatal("a source volume stayed in the carrier group")
	}
}
