package driver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// groupTypeName is the rig's group type for volume group snapshots
// (created here as admin when missing, and kept: it is configuration).
const groupTypeName = "csi-consistent"

// TestGroupSnapshotsOnRealCinder takes a VolumeGroupSnapshot of two
// attached volumes with data on them through the GroupController, restores
// each member into a new volume and reads the data back on node1, deletes
// the group snapshot while the restored volumes exist, and checks that no
// group, group snapshot or snapshot is left.
func TestGroupSnapshotsOnRealCinder(t *testing.T) {
	env := rig.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the node service formats and mounts the hot-plugged devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := newSuite(ctx, t, env, "e2e-group", func(admin *rig.Client) { ensureGroupType(ctx, t, admin) })
	gc := csi.NewGroupControllerClient(s.d.Conn)
	class := map[string]string{"group-type": groupTypeName}

	// Two volumes of one app, attached to node1, each with its own data.
	vols := map[string]string{}
	payloads := map[string][]byte{}
	pcs := map[string]map[string]string{}
	for _, name := range []string{"data", "wal"} {
		id := s.mustCreate(t, name, 1, nil)
		vols[name] = id
		resp, err := s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: env.Node1, VolumeCapability: mountCap("xfs")})
		if err != nil {
			t.Fatalf("publish %s: %v", name, err)
		}
		pcs[id] = resp.PublishContext
		staging, target := s.stageAndPublish(t, id, resp.PublishContext)
		payloads[id] = bytes.Repeat([]byte("group snapshot member "+name+"\n"), 20000)
		if err := os.WriteFile(filepath.Join(target, "data"), payloads[id], 0o644); err != nil {
			t.Fatal(err)
		}
		// Unmounted so the data is on the RBD image; the volume stays
		// attached (in-use), as under a running pod.
		s.unpublishAndUnstage(t, id, staging, target)
	}

	name := s.tag + "-vgs"
	req := &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: []string{vols["wal"], vols["data"]}, Parameters: class}
	start := time.Now()
	var vgs *csi.VolumeGroupSnapshot
	calls := 0
	for vgs == nil {
		calls++
		resp, err := gc.CreateVolumeGroupSnapshot(ctx, req)
		switch {
		case err == nil && resp.GroupSnapshot.ReadyToUse:
			vgs = resp.GroupSnapshot
		case err == nil, status.Code(err) == codes.Aborted, status.Code(err) == codes.Unavailable:
			time.Sleep(time.Second) // the snapshotter's retry, not a timing assertion
		default:
			t.Fatalf("CreateVolumeGroupSnapshot: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("group snapshot not ready before the deadline")
		}
	}
	t.Logf("group snapshot %s ready after %v (%d CreateVolumeGroupSnapshot calls), %d members", vgs.GroupSnapshotId, time.Since(start).Round(time.Millisecond), calls, len(vgs.Snapshots))
	if len(vgs.Snapshots) != 2 {
		t.Fatalf("members %v, want 2", vgs.Snapshots)
	}
	for _, id := range vols {
		r, err := s.raw.Do(ctx, rig.Volume, "GET", "/volumes/"+id, "3.13", nil)
		if err != nil || r.Status != 200 || str(r.JSON()["volume"], "group_id") != "" || str(r.JSON()["volume"], "status") != "in-use" {
			t.Errorf("volume %s after the group snapshot: %v %s (want in-use, in no group)", id, err, r.Body)
		}
	}
	start = time.Now()
	again, err := gc.CreateVolumeGroupSnapshot(ctx, req)
	if err != nil || again.GroupSnapshot.GroupSnapshotId != vgs.GroupSnapshotId {
		t.Errorf("repeated CreateVolumeGroupSnapshot: %v %v", err, again)
	}
	t.Logf("repeated CreateVolumeGroupSnapshot took %v", time.Since(start).Round(time.Millisecond))
	got, err := gc.GetVolumeGroupSnapshot(ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GroupSnapshotId})
	if err != nil || !got.GroupSnapshot.ReadyToUse || len(got.GroupSnapshot.Snapshots) != 2 {
		t.Errorf("GetVolumeGroupSnapshot: %v %v", err, got)
	}
	_, err = gc.CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: []string{vols["data"]}, Parameters: class})
	wantCode(t, "same name, other volumes", err, codes.AlreadyExists)

	// Restore each member and read its data back.
	for _, m := range vgs.Snapshots {
		start := time.Now()
		b := s.mustCreate(t, "restore-"+m.SnapshotId[:8], 1, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: m.SnapshotId}}})
		t.Logf("restore of member %s took %v", m.SnapshotId, time.Since(start).Round(time.Millisecond))
		pb, err := s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: b, NodeId: env.Node1, VolumeCapability: mountCap("xfs")})
		if err != nil {
			t.Fatalf("publish restored volume: %v", err)
		}
		staging, target := s.stageAndPublish(t, b, pb.PublishContext)
		data, err := os.ReadFile(filepath.Join(target, "data"))
		if err != nil || !bytes.Equal(data, payloads[m.SourceVolumeId]) {
			t.Errorf("member %s of %s: read back %d bytes, err %v, equal %v", m.SnapshotId, m.SourceVolumeId, len(data), err, bytes.Equal(data, payloads[m.SourceVolumeId]))
		} else {
			t.Logf("member of %s: read back %d bytes, identical", m.SourceVolumeId, len(data))
		}
		s.unpublishAndUnstage(t, b, staging, target)
		if _, err := s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: b, NodeId: env.Node1}); err != nil {
			t.Errorf("unpublish restored volume: %v", err)
		}
	}

	// Delete while the restored volumes exist, as a user deleting the
	// VolumeGroupSnapshot after restoring from it.
	start = time.Now()
	for {
		_, err := gc.DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GroupSnapshotId})
		if err == nil {
			break
		}
		if status.Code(err) != codes.Aborted || ctx.Err() != nil {
			t.Fatalf("DeleteVolumeGroupSnapshot: %v", err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("DeleteVolumeGroupSnapshot took %v", time.Since(start).Round(time.Millisecond))
	if _, err := gc.DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GroupSnapshotId}); err != nil {
		t.Errorf("repeated DeleteVolumeGroupSnapshot: %v", err)
	}
	if left := groupLeftovers(ctx, t, s.raw, s.tag); left != "" {
		t.Errorf("left behind: %s", left)
	}
	for id := range vols {
		if _, err := s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: env.Node1}); err != nil {
			t.Errorf("unpublish %s: %v", id, err)
		}
	}
	s.cleanup()
	if left := groupLeftovers(ctx, t, s.raw, s.tag); left != "" {
		t.Errorf("left behind after cleanup: %s", left)
	}
}

// ensureGroupType creates the rig's group type when it is missing.
func ensureGroupType(ctx context.Context, t *testing.T, admin *rig.Client) {
	t.Helper()
	if err := rig.EnsureGroupType(ctx, admin, groupTypeName); err != nil {
		t.Fatal(err)
	}
}

// groupLeftovers lists, in the member's project, any group or group
// snapshot, and any snapshot whose name carries tag.
func groupLeftovers(ctx context.Context, t *testing.T, c *rig.Client, tag string) string {
	t.Helper()
	var left []string
	for _, kind := range []string{"groups", "group_snapshots", "snapshots"} {
		r, err := c.Do(ctx, rig.Volume, "GET", "/"+kind+"/detail", "3.14", nil)
		if err != nil || r.Status != 200 {
			t.Fatalf("listing %s: %v %v", kind, err, r)
		}
		list, _ := r.JSON()[kind].([]any)
		for _, x := range list {
			if n := str(x, "name"); strings.HasPrefix(n, tag) {
				left = append(left, fmt.Sprintf("%s %s (%s)", strings.TrimSuffix(kind, "s"), str(x, "id"), str(x, "status")))
			}
		}
	}
	return strings.Join(left, ", ")
}
