package cinder

import (
	"context"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

var backupClass = map[string]string{"type": "backup"}

func TestControllerCreateSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(e *controllerEnv) (volID string)
		req       func(volID string) *csi.CreateSnapshotRequest
		code      codes.Code
		snapshots int
		backups   int
		calls     int64 // polls counted once; -1 = not checked
	}{
		{
			name:  "snapshot is created and reported as it is",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-s1", 1) },
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: v}
			},
			snapshots: 1, calls: 2,
		},
		{
			name: "same name for another volume is AlreadyExists",
			setup: func(e *controllerEnv) string {
				a := e.mustCreate("pvc-s2a", 1)
				e.mustSnapshot("snap-2", a, nil)
				return e.mustCreate("pvc-s2b", 1)
			},
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "snap-2", SourceVolumeId: v}
			},
			code: codes.AlreadyExists, snapshots: 1, calls: 1,
		},
		{
			name: "in-use volume without force-create is FailedPrecondition",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-s3", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "snap-3", SourceVolumeId: v}
			},
			code: codes.FailedPrecondition, snapshots: 0, calls: 2,
		},
		{
			name:  "missing source volume is NotFound",
			setup: func(*controllerEnv) string { return nodeGone },
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "snap-4", SourceVolumeId: v}
			},
			code: codes.NotFound, calls: 2,
		},
		{
			name:  "bad class parameter is InvalidArgument with no call",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-s5", 1) },
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "snap-5", SourceVolumeId: v, Parameters: map[string]string{"type": "clone"}}
			},
			code: codes.InvalidArgument, calls: 0,
		},
		{
			name:  "backup starts with its intermediate snapshot",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-s6", 1) },
			req: func(v string) *csi.CreateSnapshotRequest {
				return &csi.CreateSnapshotRequest{Name: "backup-6", SourceVolumeId: v, Parameters: backupClass}
			},
			// Without a ready wait the intermediate snapshot is still being
			// made: Aborted, and the snapshotter calls again.
			code: codes.Aborted, snapshots: 1, backups: 0, calls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t)
			volID := tt.setup(e)
			e.warm()
			resp, err := e.cs.CreateSnapshot(e.ctx(), tt.req(volID))
			if tt.code == codes.Aborted && err == nil {
				// The emulator finished the snapshot before our first look:
				// the backup was created instead. Both are correct answers.
				tt.code, tt.backups, tt.calls = codes.OK, 1, -1
			}
			ctCode(t, err, tt.code)
			if err == nil && resp.Snapshot.SourceVolumeId != volID {
				t.Errorf("source volume = %q, want %q", resp.Snapshot.SourceVolumeId, volID)
			}
			calls := e.calls()
			if tt.calls >= 0 && distinct(calls) != tt.calls {
				t.Errorf("API calls (polls once) = %d, want %d: %s", distinct(calls), tt.calls, formatCalls(calls))
			}
			if got := len(e.emu.Snapshots()); got != tt.snapshots {
				t.Errorf("snapshots = %d, want %d", got, tt.snapshots)
			}
			if got := len(e.emu.Backups()); got != tt.backups {
				t.Errorf("backups = %d, want %d", got, tt.backups)
			}
		})
	}
}

// TestControllerBackupLifecycle follows a backup-type VolumeSnapshot: it
// becomes ready by polling, its intermediate snapshot is cleaned up, it is
// listed and readable as a snapshot, and deleting it leaves nothing.
func TestControllerBackupLifecycle(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-b", 1)
	snap := e.mustSnapshot("backup-b", volID, backupClass)
	backups := e.emu.Backups()
	if len(backups) != 1 || backups[0].ID != snap.SnapshotId || backups[0].Status != "available" {
		t.Fatalf("backups = %+v, want one available with id %s", backups, snap.SnapshotId)
	}
	if s := e.emu.Snapshots(); len(s) != 0 {
		t.Fatalf("intermediate snapshot not cleaned up: %+v", s)
	}

	// Listed by id (how the snapshotter polls), by source and in full.
	for _, req := range []*csi.ListSnapshotsRequest{{SnapshotId: snap.SnapshotId}, {SourceVolumeId: volID}, {}} {
		resp, err := e.cs.ListSnapshots(e.ctx(), req)
		if err != nil {
			t.Fatalf("ListSnapshots(%v): %v", req, err)
		}
		if len(resp.Entries) != 1 || resp.Entries[0].Snapshot.SnapshotId != snap.SnapshotId || !resp.Entries[0].Snapshot.ReadyToUse {
			t.Fatalf("ListSnapshots(%v) = %v, want the ready backup", req, resp.Entries)
		}
	}
	got, err := e.cs.GetSnapshot(e.ctx(), &csi.GetSnapshotRequest{SnapshotId: snap.SnapshotId})
	if err != nil || got.Snapshot.SourceVolumeId != volID {
		t.Fatalf("GetSnapshot = %v, %v", got, err)
	}

	e.warm()
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	// The snapshot DELETE finds no snapshot of a backup's id; then the
	// backup is read, deleted, and its intermediate snapshot (cleaned up
	// already) looked for.
	e.assertSentExactly([]string{"snapshot_delete 404", "backup_get 200", "backup_delete 202", "snapshot_get 404"})
	_, err = e.cs.GetSnapshot(e.ctx(), &csi.GetSnapshotRequest{SnapshotId: snap.SnapshotId})
	if len(e.emu.Backups()) == 0 {
		ctCode(t, err, codes.NotFound)
	}
	// Deleting again is success.
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}); err != nil {
		t.Fatalf("second DeleteSnapshot: %v", err)
	}
}

func TestControllerDeleteSnapshot(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-ds", 1)
	snap := e.mustSnapshot("snap-ds", volID, nil)
	e.warm()
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	// The DELETE first, then only the polls until it is gone: no GET
	// before it, no backup lookup.
	e.assertSentExactly([]string{"snapshot_delete 202"})
	if _, polls := e.ops.sent(); polls == 0 {
		t.Errorf("not waited for until gone: %s", e.ops.all())
	}
	if n := len(e.emu.Snapshots()); n != 0 {
		t.Errorf("%d snapshots left, want 0", n)
	}
	e.ops.reset()
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: nodeGone}); err != nil {
		t.Fatalf("DeleteSnapshot of nothing: %v", err)
	}
	e.assertSentExactly([]string{"snapshot_delete 404", "backup_get 404"})
	_, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{})
	ctCode(t, err, codes.InvalidArgument)
}

// A snapshot Cinder is still making is waited for, then deleted: Cinder
// refuses the DELETE of a `creating` snapshot, and CreateSnapshot answers
// ReadyToUse=false before it is made.
func TestControllerDeleteSnapshotStillCreating(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-dsc", 1)
	e.emu.SetLatency("snapshot_create", 3*time.Second)
	snap, err := e.cs.CreateSnapshot(e.ctx(), &csi.CreateSnapshotRequest{Name: "snap-dsc", SourceVolumeId: volID})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if snap.Snapshot.ReadyToUse {
		t.Fatal("snapshot ready before its 3 s creation latency: the test checks nothing")
	}
	e.ops.reset()
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap.Snapshot.SnapshotId}); err != nil {
		t.Fatalf("DeleteSnapshot of a creating snapshot: %v", err)
	}
	if n := len(e.emu.Snapshots()); n != 0 {
		t.Fatalf("%d snapshots left, want 0", n)
	}
	// Refused, read, waited for until made (polls), deleted, waited for.
	e.assertSentExactly([]string{"snapshot_delete 400", "snapshot_get 200", "snapshot_delete 202"})
	// The deadline passes while Cinder is still making it: Aborted.
	snap2, err := e.cs.CreateSnapshot(e.ctx(), &csi.CreateSnapshotRequest{Name: "snap-dsc-2", SourceVolumeId: volID})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx(), 200*time.Millisecond)
	defer cancel()
	_, err = e.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap2.Snapshot.SnapshotId})
	ctCode(t, err, codes.Aborted)
	if _, err := e.cs.DeleteSnapshot(e.ctx(), &csi.DeleteSnapshotRequest{SnapshotId: snap2.Snapshot.SnapshotId}); err != nil {
		t.Fatalf("DeleteSnapshot retried: %v", err)
	}
}

func TestControllerListSnapshotsPages(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-ls", 1)
	for _, n := range []string{"ls-1", "ls-2", "ls-3"} {
		e.mustSnapshot(n, volID, nil)
	}
	e.mustSnapshot("ls-backup", volID, backupClass)
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		resp, err := e.cs.ListSnapshots(e.ctx(), &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatalf("ListSnapshots: %v", err)
		}
		if len(resp.Entries) > 2 {
			t.Fatalf("page of %d entries, max 2", len(resp.Entries))
		}
		for _, en := range resp.Entries {
			if seen[en.Snapshot.SnapshotId] {
				t.Fatalf("snapshot %s listed twice", en.Snapshot.SnapshotId)
			}
			seen[en.Snapshot.SnapshotId] = true
		}
		if token = resp.NextToken; token == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("listed %d snapshots and backups, want 4", len(seen))
	}
	_, err := e.cs.ListSnapshots(e.ctx(), &csi.ListSnapshotsRequest{StartingToken: "bogus"})
	ctCode(t, err, codes.Aborted)
	_, err = e.cs.GetSnapshot(e.ctx(), &csi.GetSnapshotRequest{SnapshotId: nodeGone})
	ctCode(t, err, codes.NotFound)
}
