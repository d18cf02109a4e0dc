package cinder

import (
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// TestControllerAPICallsPerOperation logs the OpenStack API calls each
// controller operation makes on the happy path (Keystone excluded), and
// checks the fixed parts: no operation makes more than one mutating call.
// Polls depend on how fast the emulator finishes, so they are reported, not
// asserted. Run with -v to see the table.
func TestControllerAPICallsPerOperation(t *testing.T) {
	for _, profile := range []string{"fast", "realistic"} {
		t.Run(profile, func(t *testing.T) {
			if profile == "realistic" && testing.Short() {
				t.Skip("realistic latencies take about 15 s; skipped with -short")
			}
			apiCallsPerOperation(t, profile)
		})
	}
}

func apiCallsPerOperation(t *testing.T, profile string) {
	env := newControllerEnv(t,
		withController(func(o *ControllerOptions) { o.SnapshotReadyWait = 2 * time.Second }),
		withEmulator(func(o *emulator.Options) { o.Profile = profile }))
	env.warm()
	ctx := env.ctx()

	type step struct {
		name        string
		run         func() error
		maxMutating int64
		sent        []string // when set, the requests other than polls, in order
	}
	var volID, snapID string
	steps := []step{
		{"CreateVolume", func() error {
			resp, err := env.cs.CreateVolume(ctx, createReq("pvc-calls", 1))
			volID = resp.GetVolume().GetVolumeId()
			return err
		}, 1, nil},
		{"CreateVolume (retry, exists)", func() error {
			_, err := env.cs.CreateVolume(ctx, createReq("pvc-calls", 1))
			return err
		}, 0, nil},
		{"ControllerPublishVolume", func() error {
			_, err := env.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: nodeA, VolumeCapability: rwo})
			return err
		}, 1, nil},
		{"ControllerPublishVolume (again, same node)", func() error {
			_, err := env.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: nodeA, VolumeCapability: rwo})
			return err
		}, 0, nil},
		{"ControllerExpandVolume (in-use)", func() error {
			_, err := env.cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: volID, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: rwo})
			return err
		}, 1, []string{"volume_extend 202"}},
		{"CreateSnapshot", func() error {
			resp, err := env.cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-calls", SourceVolumeId: volID, Parameters: map[string]string{"force-create": "true"}})
			snapID = resp.GetSnapshot().GetSnapshotId()
			return err
		}, 1, nil},
		{"ListSnapshots by id (snapshotter poll)", func() error {
			_, err := env.cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: snapID})
			return err
		}, 0, nil},
		{"ControllerUnpublishVolume", func() error {
			_, err := env.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: nodeA})
			return err
		}, 1, nil},
		{"ControllerUnpublishVolume (again, detached)", func() error {
			_, err := env.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: nodeA})
			return err
		}, 0, nil},
		{"DeleteSnapshot", func() error {
			_, err := env.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snapID})
			return err
		}, 1, []string{"snapshot_delete 202"}},
		{"DeleteVolume", func() error {
			// The CO deletes the PVC after the VolumeSnapshot; Cinder
			// refuses (Aborted) while the snapshot is still deleting, and the
			// provisioner retries. Only the last attempt is counted.
			for {
				env.emu.ResetCounters()
				_, err := env.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volID})
				if status.Code(err) != codes.Aborted || ctx.Err() != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, 1, nil},
	}
	for _, s := range steps {
		env.emu.ResetCounters()
		env.ops.reset()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		calls := env.calls()
		t.Logf("%-45s %2d calls (%d mutating): %s", s.name, total(calls), mutating(calls), formatCalls(calls))
		if m := mutating(calls); m > s.maxMutating {
			t.Errorf("%s made %d mutating calls, want at most %d", s.name, m, s.maxMutating)
		}
		if s.sent != nil {
			// The change goes first; the resource is not read before it.
			env.assertSentExactly(s.sent)
		}
	}
	if n := len(env.emu.Volumes()) + len(env.emu.Snapshots()) + len(env.emu.Attachments()); n != 0 {
		t.Fatalf("%d resources left in the emulator", n)
	}
}
