// Package driver runs our controller and node services end to end against
// the openstack-rig's real Cinder (Ceph RBD) and Nova, whose compute driver
// hot-plugs attached volumes on this host as loop devices over the RBD
// images, with by-id links under the rig's dev root.
package driver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

const gib = int64(1) << 30

type suite struct {
	t    *testing.T
	env  *rig.Env
	raw  *rig.Client
	adm  *rig.Client
	cc   csi.ControllerClient
	nc   csi.NodeClient
	d    *rig.Driver
	tag  string
	vols map[string]bool
	snps map[string]bool
}

// newSuite logs in as the rig's user and admin, runs beforeStart (when
// not nil) as admin, starts the driver named name and registers the
// suite's cleanup.
func newSuite(ctx context.Context, t *testing.T, env *rig.Env, name string, beforeStart func(admin *rig.Client)) *suite {
	t.Helper()
	raw, err := env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if beforeStart != nil {
		beforeStart(admin)
	}
	d := rig.StartDriver(t, env, name, "")
	s := &suite{t: t, env: env, raw: raw, adm: admin, d: d, cc: csi.NewControllerClient(d.Conn), nc: csi.NewNodeClient(d.Conn),
		tag: "e2e-" + rig.NewUUID()[:6], vols: map[string]bool{}, snps: map[string]bool{}}
	t.Cleanup(func() { s.cleanup() })
	return s
}

func TestDriverOnRealCinder(t *testing.T) {
	env := rig.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the node service formats and mounts the hot-plugged device")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	s := newSuite(ctx, t, env, "e2e", nil)

	t.Run("capabilities and GetCapacity from the real quota", s.capacity)
	var a string
	t.Run("create, idempotent repeat, get, validate", func(t *testing.T) { a = s.createBasic(t) })
	if a == "" {
		t.FailNow()
	}
	t.Run("error paths", func(t *testing.T) { s.errorPaths(t, a) })
	var pc map[string]string
	t.Run("publish via Nova; second node refused; delete while attached refused", func(t *testing.T) { pc = s.publish(t, a) })
	if pc == nil {
		t.FailNow()
	}
	t.Run("node: stage, publish, write, snapshot, restore, read back, expand in-use, unstage", func(t *testing.T) { s.nodePath(t, a, pc) })
	t.Run("clone, backup class, restore, expand available", func(t *testing.T) { s.cloneBackupExpand(t, a) })
	t.Run("modify: VolumeAttributesClass retypes", s.modify)
	t.Run("ListVolumes paging beyond one page", s.listPaging)
	t.Run("over quota", s.overQuota)
	t.Run("delete everything, nothing left", func(*testing.T) { s.cleanup() })
}

func (s *suite) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 3*time.Minute)
}

func mountCap(fs string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	t.Logf("%s: %s as expected: %s", what, code, status.Convert(err).Message())
}

func (s *suite) create(_ *testing.T, name string, sizeGiB int64, params map[string]string, src *csi.VolumeContentSource) (*csi.Volume, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:                s.tag + "-" + name,
		CapacityRange:       &csi.CapacityRange{RequiredBytes: sizeGiB * gib},
		VolumeCapabilities:  []*csi.VolumeCapability{mountCap("xfs")},
		Parameters:          params,
		VolumeContentSource: src,
	})
	if err != nil {
		return nil, err
	}
	s.vols[resp.Volume.VolumeId] = true
	return resp.Volume, nil
}

func (s *suite) mustCreate(t *testing.T, name string, sizeGiB int64, src *csi.VolumeContentSource) string {
	t.Helper()
	v, err := s.create(t, name, sizeGiB, nil, src)
	if err != nil {
		t.Fatalf("CreateVolume %s: %v", name, err)
	}
	s.expectCinder(t, v.VolumeId, "available", sizeGiB)
	return v.VolumeId
}

// expectCinder checks the volume as real Cinder reports it.
func (s *suite) expectCinder(t *testing.T, id, status string, sizeGiB int64) {
	t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.raw.Do(ctx, rig.Volume, "GET", "/volumes/"+id, "3.42", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET volume %s: %v %v", id, err, r)
	}
	v, _ := r.JSON()["volume"].(map[string]any)
	if v["status"] != status || int64(v["size"].(float64)) != sizeGiB {
		t.Errorf("Cinder says volume %s is %v, %v GiB; want %s, %d GiB", id, v["status"], v["size"], status, sizeGiB)
	}
}

func (s *suite) capacity(t *testing.T) {
	ctx, cancel := s.ctx()
	defer cancel()
	caps, err := s.cc.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("controller capabilities: %d", len(caps.Capabilities))
	r, err := s.raw.Do(ctx, rig.Volume, "GET", "/os-quota-sets/"+s.raw.ProjectID+"?usage=true", "3.0", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("quota: %v %v", err, r)
	}
	g := r.JSON()["quota_set"].(map[string]any)["gigabytes"].(map[string]any)
	limit, used := int64(g["limit"].(float64)), int64(g["in_use"].(float64)+g["reserved"].(float64))
	resp, err := s.cc.GetCapacity(ctx, &csi.GetCapacityRequest{VolumeCapabilities: []*csi.VolumeCapability{mountCap("ext4")}})
	if err != nil {
		t.Fatalf("GetCapacity: %v", err)
	}
	t.Logf("GetCapacity: %d bytes; Cinder quota gigabytes limit %d, used %d", resp.AvailableCapacity, limit, used)
	if limit >= 0 && resp.AvailableCapacity != (limit-used)*gib {
		t.Errorf("GetCapacity %d, want (limit %d - used %d) GiB = %d", resp.AvailableCapacity, limit, used, (limit-used)*gib)
	}
}

func (s *suite) createBasic(t *testing.T) string {
	v, err := s.create(t, "a", 1, nil, nil)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	again, err := s.create(t, "a", 1, nil, nil)
	if err != nil || again.VolumeId != v.VolumeId {
		t.Errorf("idempotent CreateVolume: %v, id %v vs %s", err, again, v.VolumeId)
	}
	s.expectCinder(t, v.VolumeId, "available", 1)
	if len(v.AccessibleTopology) == 0 || v.AccessibleTopology[0].Segments[cinder.TopologyKey] != "nova" {
		t.Errorf("topology %v, want zone nova", v.AccessibleTopology)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.cc.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: v.VolumeId}); err != nil && status.Code(err) != codes.Unimplemented {
		t.Errorf("ControllerGetVolume: %v", err)
	}
	vr, err := s.cc.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: v.VolumeId, VolumeCapabilities: []*csi.VolumeCapability{mountCap("ext4")}})
	if err != nil || vr.Confirmed == nil {
		t.Errorf("ValidateVolumeCapabilities: %v %v", err, vr)
	}
	return v.VolumeId
}

func (s *suite) errorPaths(t *testing.T, a string) {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.create(t, "badtype", 1, map[string]string{"type": "no-such-type"}, nil)
	wantCode(t, "CreateVolume with an unknown type", err, codes.InvalidArgument)
	_, err = s.create(t, "badsnap", 1, nil, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: rig.NewUUID()}}})
	wantCode(t, "CreateVolume from a missing snapshot", err, codes.NotFound)
	_, err = s.create(t, "badsrc", 1, nil, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: rig.NewUUID()}}})
	wantCode(t, "CreateVolume from a missing volume", err, codes.NotFound)
	_, err = s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: a, NodeId: rig.NewUUID(), VolumeCapability: mountCap("xfs")})
	wantCode(t, "ControllerPublishVolume to a missing server", err, codes.NotFound)
	_, err = s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: rig.NewUUID(), NodeId: s.env.Node1, VolumeCapability: mountCap("xfs")})
	wantCode(t, "ControllerPublishVolume of a missing volume", err, codes.NotFound)
	_, err = s.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: s.tag + "-nosrc", SourceVolumeId: rig.NewUUID()})
	wantCode(t, "CreateSnapshot of a missing volume", err, codes.NotFound)
	_, err = s.cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: rig.NewUUID(), CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
	wantCode(t, "ControllerExpandVolume of a missing volume", err, codes.NotFound)
	_, err = s.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: rig.NewUUID()})
	wantCode(t, "DeleteVolume of a missing volume", err, codes.OK)
	_, err = s.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: rig.NewUUID()})
	wantCode(t, "DeleteSnapshot of a missing snapshot", err, codes.OK)
	_, err = s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: a, NodeId: s.env.Node2})
	wantCode(t, "ControllerUnpublishVolume of a volume not attached there", err, codes.OK)
}

func (s *suite) publish(t *testing.T, a string) map[string]string {
	ctx, cancel := s.ctx()
	defer cancel()
	req := &csi.ControllerPublishVolumeRequest{VolumeId: a, NodeId: s.env.Node1, VolumeCapability: mountCap("xfs")}
	resp, err := s.cc.ControllerPublishVolume(ctx, req)
	if err != nil {
		t.Fatalf("ControllerPublishVolume: %v", err)
	}
	t.Logf("publish context %v", resp.PublishContext)
	again, err := s.cc.ControllerPublishVolume(ctx, req)
	if err != nil || again.PublishContext[cinder.PublishContextDevicePath] != resp.PublishContext[cinder.PublishContextDevicePath] {
		t.Errorf("idempotent publish: %v %v", err, again)
	}
	s.expectCinder(t, a, "in-use", 1)
	_, err = s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: a, NodeId: s.env.Node2, VolumeCapability: mountCap("xfs")})
	wantCode(t, "publish to a second node", err, codes.FailedPrecondition)
	_, err = s.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: a})
	wantCode(t, "DeleteVolume while attached", err, codes.FailedPrecondition)
	s.expectCinder(t, a, "in-use", 1)
	return resp.PublishContext
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stageAndPublish stages volume id on node1 and publishes it at a fresh
// target; it returns the target path.
func (s *suite) stageAndPublish(t *testing.T, id string, pc map[string]string) (staging, target string) {
	ctx, cancel := s.ctx()
	defer cancel()
	staging = filepath.Join(s.d.Work, "staging-"+id)
	target = filepath.Join(s.d.Work, "target-"+id)
	if _, err := s.nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, PublishContext: pc, StagingTargetPath: staging, VolumeCapability: mountCap("xfs")}); err != nil {
		t.Fatalf("NodeStageVolume %s: %v", id, err)
	}
	if _, err := s.nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, PublishContext: pc, StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap("xfs")}); err != nil {
		t.Fatalf("NodePublishVolume %s: %v", id, err)
	}
	return staging, target
}

func (s *suite) unpublishAndUnstage(t *testing.T, id, staging, target string) {
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := s.nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}
}

func (s *suite) nodePath(t *testing.T, a string, pc map[string]string) {
	ctx, cancel := s.ctx()
	defer cancel()
	info, err := s.nc.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatalf("NodeGetInfo: %v", err)
	}
	if info.NodeId != s.env.Node1 {
		t.Errorf("NodeGetInfo node id %s, want node1 %s (from the metadata served over HTTP)", info.NodeId, s.env.Node1)
	}
	t.Logf("NodeGetInfo: %s, max volumes %d, topology %v", info.NodeId, info.MaxVolumesPerNode, info.AccessibleTopology)

	staging, target := s.stageAndPublish(t, a, pc)
	payload := bytes.Repeat([]byte("cinder-csi e2e on real Cinder\n"), 40000)
	if err := os.WriteFile(filepath.Join(target, "data"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := s.nc.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: a, VolumePath: target})
	if err != nil {
		t.Errorf("NodeGetVolumeStats: %v", err)
	} else {
		t.Logf("stats: %v, condition %v", st.Usage, st.String())
	}
	// The data must leave the filesystem's cache before a Cinder snapshot
	// of the attached volume: unmount it (rig README).
	s.unpublishAndUnstage(t, a, staging, target)

	snap, err := s.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: s.tag + "-snap", SourceVolumeId: a, Parameters: map[string]string{"force-create": "true"}})
	if err != nil {
		t.Fatalf("CreateSnapshot of the attached volume: %v", err)
	}
	s.snps[snap.Snapshot.SnapshotId] = true
	if !snap.Snapshot.ReadyToUse {
		t.Errorf("snapshot not ready: %v", snap.Snapshot)
	}
	// Re-stage the original to expand it while in use.
	staging, target = s.stageAndPublish(t, a, pc)

	b := s.mustCreate(t, "from-snap", 1, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.Snapshot.SnapshotId}}})
	pcb, err := s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: b, NodeId: s.env.Node1, VolumeCapability: mountCap("xfs")})
	if err != nil {
		t.Fatalf("publish restored volume: %v", err)
	}
	stB, tgB := s.stageAndPublish(t, b, pcb.PublishContext)
	got, err := os.ReadFile(filepath.Join(tgB, "data"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Errorf("data read back from the volume restored from the snapshot: %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, payload))
	} else {
		t.Logf("read back %d bytes from the restored volume: identical", len(got))
	}
	s.unpublishAndUnstage(t, b, stB, tgB)
	if _, err := s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: b, NodeId: s.env.Node1}); err != nil {
		t.Errorf("unpublish restored volume: %v", err)
	}

	// Expand in use: Cinder extends the attached RBD image, Nova's driver
	// grows the loop device, NodeExpandVolume grows XFS online.
	ex, err := s.cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: a, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: mountCap("xfs")})
	if err != nil {
		t.Fatalf("ControllerExpandVolume in use: %v", err)
	}
	s.expectCinder(t, a, "in-use", 2)
	if ex.NodeExpansionRequired {
		// Cinder reports in-use again before Nova's volume-extended
		// event has grown the device (~1 s on the rig): the node answers
		// Unavailable until then, and the resizer retries, as here.
		for tries := 1; ; tries++ {
			_, err := s.nc.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: a, VolumePath: target, StagingTargetPath: staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: mountCap("xfs")})
			if err == nil {
				t.Logf("NodeExpandVolume done after %d tries", tries)
				break
			}
			if status.Code(err) != codes.Unavailable || tries > 30 {
				t.Errorf("NodeExpandVolume: %v", err)
				break
			}
			t.Logf("NodeExpandVolume try %d: %v", tries, err)
			time.Sleep(time.Second)
		}
	}
	df := run(t, "df", "-B1", "--output=size", target)
	t.Logf("filesystem after expand: %s", strings.Join(strings.Fields(df), " "))
	if f := strings.Fields(df); len(f) < 2 || !bigger(f[1], gib+gib/2) {
		t.Errorf("filesystem not grown: %s", df)
	}
	got, err = os.ReadFile(filepath.Join(target, "data"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Errorf("data after expand: err %v", err)
	}
	s.unpublishAndUnstage(t, a, staging, target)
	if _, err := s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: a, NodeId: s.env.Node1}); err != nil {
		t.Fatalf("ControllerUnpublishVolume: %v", err)
	}
	s.expectCinder(t, a, "available", 2)
	if _, err := os.Lstat(filepath.Join(s.env.DevRoot, "disk", "by-id", "virtio-"+a[:20])); !os.IsNotExist(err) {
		t.Errorf("by-id link still there after unpublish: %v", err)
	}
}

func bigger(s string, n int64) bool {
	var v int64
	_, err := fmt.Sscan(s, &v)
	return err == nil && v > n
}

func (s *suite) cloneBackupExpand(t *testing.T, a string) {
	ctx, cancel := s.ctx()
	defer cancel()
	clone := s.mustCreate(t, "clone", 2, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: a}}})
	// A clone asked for less than its source is made at the source's
	// size (the capacity range has no limit); with a limit below the
	// source it is OutOfRange.
	small, err := s.create(t, "clone-small", 1, nil, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: a}}})
	if err != nil || small.CapacityBytes != 2*gib {
		t.Errorf("clone asking 1 GiB of a 2 GiB source: %v %v", err, small)
	}
	{
		ctx, cancel := s.ctx()
		_, err := s.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: s.tag + "-clone-limit", CapacityRange: &csi.CapacityRange{RequiredBytes: gib, LimitBytes: gib},
			VolumeCapabilities: []*csi.VolumeCapability{mountCap("xfs")}, VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: a}}}})
		cancel()
		wantCode(t, "clone with limit_bytes below its source", err, codes.OutOfRange)
	}

	bk, err := s.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: s.tag + "-backup", SourceVolumeId: clone, Parameters: map[string]string{"type": "backup"}})
	for err == nil && !bk.Snapshot.ReadyToUse {
		// A backup class reports progress; CSI retries the call.
		time.Sleep(time.Second)
		bk, err = s.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: s.tag + "-backup", SourceVolumeId: clone, Parameters: map[string]string{"type": "backup"}})
	}
	if err != nil {
		t.Fatalf("CreateSnapshot (backup class): %v", err)
	}
	s.snps[bk.Snapshot.SnapshotId] = true
	t.Logf("backup %s ready, %d bytes", bk.Snapshot.SnapshotId, bk.Snapshot.SizeBytes)
	ls, err := s.cc.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: bk.Snapshot.SnapshotId})
	if err != nil || len(ls.Entries) != 1 {
		t.Errorf("ListSnapshots by backup id: %v %v", err, ls)
	}
	restored := s.mustCreate(t, "from-backup", 2, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: bk.Snapshot.SnapshotId}}})
	if _, err := s.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: bk.Snapshot.SnapshotId}); err != nil {
		t.Errorf("DeleteSnapshot (backup): %v", err)
	} else {
		delete(s.snps, bk.Snapshot.SnapshotId)
	}
	ex, err := s.cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: restored, CapacityRange: &csi.CapacityRange{RequiredBytes: 3 * gib}})
	if err != nil {
		t.Fatalf("ControllerExpandVolume available: %v", err)
	}
	if ex.CapacityBytes != 3*gib {
		t.Errorf("expand answered %d bytes", ex.CapacityBytes)
	}
	s.expectCinder(t, restored, "available", 3)
}

func (s *suite) listPaging(t *testing.T) {
	for i := 0; i < 3; i++ {
		s.mustCreate(t, fmt.Sprintf("page-%d", i), 1, nil)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	seen := map[string]bool{}
	token, pages := "", 0
	for {
		resp, err := s.cc.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatalf("ListVolumes page %d: %v", pages, err)
		}
		pages++
		if len(resp.Entries) > 2 {
			t.Errorf("page of %d entries with max_entries 2", len(resp.Entries))
		}
		for _, e := range resp.Entries {
			if seen[e.Volume.VolumeId] {
				t.Errorf("volume %s listed twice", e.Volume.VolumeId)
			}
			seen[e.Volume.VolumeId] = true
		}
		token = resp.NextToken
		if token == "" || pages > 50 {
			break
		}
	}
	for id := range s.vols {
		if !seen[id] {
			t.Errorf("volume %s not listed", id)
		}
	}
	t.Logf("ListVolumes: %d volumes in %d pages of 2", len(seen), pages)
	resp, err := s.cc.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: "not-a-token"})
	if err == nil && len(resp.Entries) > 0 {
		t.Errorf("ListVolumes with a bad token answered entries")
	} else {
		wantCode(t, "ListVolumes with a bad starting token", err, codes.Aborted)
	}
}

func (s *suite) overQuota(t *testing.T) {
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.raw.Do(ctx, rig.Volume, "GET", "/os-quota-sets/"+s.raw.ProjectID+"?usage=true", "3.0", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("quota: %v %v", err, r)
	}
	g := r.JSON()["quota_set"].(map[string]any)["gigabytes"].(map[string]any)
	used := int(g["in_use"].(float64))
	old, err := s.adm.SetGigabytesQuota(ctx, s.raw.ProjectID, used+2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := s.adm.SetGigabytesQuota(context.Background(), s.raw.ProjectID, old); err != nil {
			t.Error(err)
		}
	}()
	capResp, err := s.cc.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil || capResp.AvailableCapacity != 2*gib {
		t.Errorf("GetCapacity with 2 GiB left: %v %v", err, capResp)
	}
	before := len(s.vols)
	_, err = s.create(t, "too-big", 5, nil, nil)
	wantCode(t, "CreateVolume over the gigabytes quota", err, codes.ResourceExhausted)
	if len(s.vols) != before {
		t.Errorf("over-quota create returned a volume")
	}
	r, _ = s.raw.Do(ctx, rig.Volume, "GET", "/volumes?name="+s.tag+"-too-big", "3.34", nil)
	if r != nil && strings.Contains(string(r.Body), s.tag+"-too-big") {
		t.Errorf("over-quota create left a Cinder volume: %s", r.Body)
	}
}

func (s *suite) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for id := range s.snps {
		if _, err := s.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
			s.t.Errorf("DeleteSnapshot %s: %v", id, err)
			continue
		}
		delete(s.snps, id)
	}
	for id := range s.vols {
		for _, n := range []string{s.env.Node1, s.env.Node2} {
			_, _ = s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: n})
		}
		if _, err := s.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			s.t.Errorf("DeleteVolume %s: %v", id, err)
			continue
		}
		delete(s.vols, id)
	}
}
