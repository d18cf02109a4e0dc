package node

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/tests/e2e/vm/vmenv"
)

// volume is one Cinder volume through its life; teardown undoes whatever
// was done, in kubelet's and the attach/detach controller's order.
type volume struct {
	s                 *suite
	id                string
	pc                map[string]string
	staging, target   string
	staged, published bool
	attached          bool
	// awaitLink: publish waits for mdev's by-id link. A scenario that
	// asserts the by-id path needs it: mdev makes the link a moment after
	// the disk appears, and a stage in that gap rightly finds the disk by
	// its sysfs serial instead (CI saw this once, right after mdev -d).
	awaitLink bool
}

func mountCap(fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
}

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
}

func (s *suite) newVolume(t *testing.T) *volume {
	t.Helper()
	resp, err := s.Controller.CreateVolume(s.ctx, &csi.CreateVolumeRequest{Name: "e2e-vm-" + t.Name(),
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap("ext4")}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	v := &volume{s: s, id: resp.GetVolume().GetVolumeId()}
	v.staging, v.target = vmenv.StagingPath(v.id), vmenv.TargetPath("pod-"+v.id[:8], v.id)
	t.Cleanup(func() { v.teardown(t) })
	return v
}

func (v *volume) serial() string { return v.id[:20] }

func (v *volume) publish(t *testing.T) {
	t.Helper()
	resp, err := v.s.Controller.ControllerPublishVolume(v.s.ctx, &csi.ControllerPublishVolumeRequest{VolumeId: v.id,
		NodeId: vmenv.ServerID, VolumeCapability: mountCap("ext4")})
	if err != nil {
		t.Fatalf("ControllerPublishVolume: %v", err)
	}
	v.pc, v.attached = resp.GetPublishContext(), true
	if v.awaitLink {
		if err := v.s.Guest.WaitPath(v.s.ctx, "/dev/disk/by-id/virtio-"+v.serial(), false); err != nil {
			t.Fatalf("by-id link: %v", err)
		}
	}
}

func (v *volume) stageRequest(c *csi.VolumeCapability) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{VolumeId: v.id, PublishContext: v.pc, StagingTargetPath: v.staging, VolumeCapability: c}
}

func (v *volume) stage(t *testing.T, c *csi.VolumeCapability) {
	t.Helper()
	v.staged = true
	if _, err := v.s.Node.NodeStageVolume(v.s.ctx, v.stageRequest(c)); err != nil {
		t.Fatalf("NodeStageVolume: %v\nplugin log:\n%s", err, v.s.LogTail(v.s.ctx, 15))
	}
}

func (v *volume) nodePublish(t *testing.T, c *csi.VolumeCapability, volumeContext map[string]string) {
	t.Helper()
	v.published = true
	if _, err := v.s.Node.NodePublishVolume(v.s.ctx, &csi.NodePublishVolumeRequest{VolumeId: v.id, PublishContext: v.pc,
		StagingTargetPath: v.staging, TargetPath: v.target, VolumeCapability: c, VolumeContext: volumeContext}); err != nil {
		t.Fatalf("NodePublishVolume: %v\nplugin log:\n%s", err, v.s.LogTail(v.s.ctx, 15))
	}
}

func (v *volume) nodeUnpublish(t *testing.T) {
	t.Helper()
	if _, err := v.s.Node.NodeUnpublishVolume(v.s.ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target}); err != nil {
		t.Errorf("NodeUnpublishVolume: %v", err)
	}
	v.published = false
}

// teardown is idempotent: each scenario calls it, and t.Cleanup again.
func (v *volume) teardown(t *testing.T) {
	ctx := v.s.ctx
	if v.published {
		v.nodeUnpublish(t)
	}
	if v.staged {
		if _, err := v.s.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
			t.Errorf("NodeUnstageVolume: %v", err)
		}
		v.staged = false
	}
	if v.attached {
		if _, err := v.s.Controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: v.id, NodeId: vmenv.ServerID}); err != nil {
			t.Errorf("ControllerUnpublishVolume: %v", err)
		}
		v.attached = false
	}
	if v.id != "" {
		if _, err := v.s.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.id}); err != nil {
			t.Errorf("DeleteVolume: %v", err)
		}
		v.id = ""
	}
}
