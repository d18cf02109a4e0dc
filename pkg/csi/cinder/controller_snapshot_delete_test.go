package cinder

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// DeleteSnapshot sends its DELETE first and reads the snapshot only when
// Cinder refuses it (the happy path, a backup's id, nothing, and a
// `creating` snapshot are in controller_snapshot_test.go).

// A snapshot an earlier call is deleting (that call ran out of time) is
// refused by Cinder; it is read, seen deleting, and waited for.
func TestControllerDeleteSnapshotAlreadyDeleting(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-dsd", 1)
	snap := e.mustSnapshot("snap-dsd", volID, nil)
	e.emu.SetLatency("snapshot_delete", time.Second)
	req := &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}
	_, err := e.cs.DeleteSnapshot(e.shortCtx(100*time.Millisecond), req)
	ctCode(t, err, codes.Aborted)
	e.ops.reset()
	if _, err := e.cs.DeleteSnapshot(e.ctx(), req); err != nil {
		t.Fatalf("DeleteSnapshot retried: %v", err)
	}
	e.assertSentExactly([]string{"snapshot_delete 400", "snapshot_get 200"})
	if _, polls := e.ops.sent(); polls == 0 {
		t.Errorf("the running delete was not waited for: %s", e.ops.all())
	}
	if n := len(e.emu.Snapshots()); n != 0 {
		t.Fatalf("%d snapshots left, want 0", n)
	}
}

// A member of a group snapshot cannot be deleted on its own: Cinder
// refuses, and the snapshot, read, is available, so the answer is
// FailedPrecondition with Cinder's message.
func TestControllerDeleteSnapshotGroupMember(t *testing.T) {
	e := newGroupEnv(t)
	ctx := e.ctx()
	a, b := e.mustCreate("gm-a", 1), e.mustCreate("gm-b", 1)
	vgs := e.mustGroupSnapshot(ctx, "vgs-gm", a, b)
	e.ops.reset()
	_, err := e.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: vgs.GetSnapshots()[0].GetSnapshotId()})
	ctCode(t, err, codes.FailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "part of a group") {
		t.Errorf("error %v does not carry Cinder's refusal", err)
	}
	e.assertSentExactly([]string{"snapshot_delete 400", "snapshot_get 200"})
	e.mustDeleteGroupSnapshot(ctx, vgs.GetGroupSnapshotId())
	e.assertNoGroupLeft()
}

// A backup whose intermediate snapshot nothing has cleaned up yet (no
// call saw the backup available) loses both to DeleteSnapshot.
func TestControllerDeleteSnapshotBackupWithIntermediate(t *testing.T) {
	e := newControllerEnv(t)
	ctx := e.ctx()
	volID := e.mustCreate("pvc-dbi", 1)
	c, err := e.cs.clouds.Get("")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, openstack.CreateSnapshotOpts{Name: "bk-dbi", VolumeID: volID})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if _, err := c.WaitSnapshot(ctx, snap.ID, func(s *openstack.Snapshot) bool { return s.Status == openstack.SnapshotAvailable }); err != nil {
		t.Fatalf("WaitSnapshot: %v", err)
	}
	bk, err := c.CreateBackup(ctx, openstack.CreateBackupOpts{Name: "bk-dbi", VolumeID: volID, SnapshotID: snap.ID, Force: true})
	if err != nil {
		t.Fatalf("CreateBackup: %v", err)
	}
	if _, err := c.WaitBackup(ctx, bk.ID, func(b *openstack.Backup) bool { return b.Status == openstack.BackupAvailable }); err != nil {
		t.Fatalf("WaitBackup: %v", err)
	}
	e.ops.reset()
	if _, err := e.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: bk.ID}); err != nil {
		t.Fatalf("DeleteSnapshot of the backup: %v", err)
	}
	e.assertSentExactly([]string{"snapshot_delete 404", "backup_get 200", "backup_delete 202", "snapshot_get 200", "snapshot_delete 202"})
	for ctx.Err() == nil && len(e.emu.Backups())+len(e.emu.Snapshots()) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(e.emu.Backups()) + len(e.emu.Snapshots()); n != 0 {
		t.Fatalf("%d backups and snapshots left, want 0", n)
	}
}

// A DELETE the cloud keeps failing is Unavailable, and nothing is read.
func TestControllerDeleteSnapshotCloudError(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-dse", 1)
	snap := e.mustSnapshot("snap-dse", volID, nil)
	e.warm()
	e.emu.SetFaults(emulator.Faults{ErrorRate: 1, OnlyPaths: []string{"DELETE /volume/v3/{project_id}/snapshots/{snapshot_id}"}})
	_, err := e.cs.DeleteSnapshot(e.shortCtx(5*time.Second), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId})
	e.emu.SetFaults(emulator.Faults{})
	ctCode(t, err, codes.Unavailable)
	for _, op := range strings.Split(e.ops.all(), ", ") {
		if !strings.HasPrefix(op, "snapshot_delete ") {
			t.Errorf("request %q besides the DELETEs; all: %s", op, e.ops.all())
		}
	}
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}); err != nil {
		t.Fatalf("DeleteSnapshot once the cloud recovered: %v", err)
	}
}

// snapshotGoneCloud answers the GET after a refusal with 404: the snapshot
// went between the refused DELETE and the read (another call's delete
// finished), which the emulator cannot time.
type snapshotGoneCloud struct {
	openstack.Cloud // nil: any other call panics
}

func (snapshotGoneCloud) GetSnapshot(context.Context, string) (*openstack.Snapshot, error) {
	return nil, &openstack.Error{Kind: openstack.KindNotFound, Op: "snapshot_get", Message: "not found"}
}

func TestSnapshotDeleteRefusedThenGone(t *testing.T) {
	cs := &ControllerServer{}
	refusal := &openstack.Error{Kind: openstack.KindConflict, Op: "snapshot_delete", Message: "Snapshot status must be available or error"}
	if _, err := cs.snapshotDeleteRefused(context.Background(), snapshotGoneCloud{}, "s", refusal); err != nil {
		t.Fatalf("a snapshot gone after the refusal: %v, want success", err)
	}
}
