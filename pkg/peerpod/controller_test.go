package peerpod

import (
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestControllerPeerPodRules: RWOP filesystems only; no publish; offline
// expansion works, expansion of a volume a pod VM holds is refused.
func TestControllerPeerPodRules(t *testing.T) {
	e := newEnv(t)
	c := NewController(e.cs, e.cloud)
	rwo := &csi.VolumeCapability{AccessType: rwopMount.AccessType,
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	_, err := c.CreateVolume(e.ctx(10*time.Second), &csi.CreateVolumeRequest{Name: "pv-rwo", VolumeCapabilities: []*csi.VolumeCapability{rwo}})
	if Code(err) != codes.InvalidArgument {
		t.Fatalf("RWO CreateVolume = %v, want InvalidArgument", err)
	}
	if vols := e.emu.Volumes(); len(vols) != 0 {
		t.Fatalf("%d volumes created by a refused CreateVolume", len(vols))
	}
	caps, err := c.ControllerGetCapabilities(e.ctx(5*time.Second), &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range caps.Capabilities {
		if cp.GetRpc().GetType() == csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME {
			t.Fatal("PUBLISH_UNPUBLISH_VOLUME advertised: external-attacher would attach to the worker")
		}
	}
	if _, err := c.ControllerPublishVolume(e.ctx(5*time.Second), &csi.ControllerPublishVolumeRequest{}); Code(err) != codes.FailedPrecondition {
		t.Fatalf("ControllerPublish = %v", err)
	}

	vol := e.volume("pv-grow")
	grow := &csi.ControllerExpandVolumeRequest{VolumeId: vol, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeCapability: rwopMount}
	resp, err := c.ControllerExpandVolume(e.ctx(20*time.Second), grow)
	if err != nil || resp.CapacityBytes != 2<<30 || resp.NodeExpansionRequired {
		t.Fatalf("offline expand = %+v, %v", resp, err)
	}
	e.podVM(testPod, sandbox, false)
	if _, err := e.att.Attach(e.ctx(20*time.Second), testPod, vol); err != nil {
		t.Fatal(err)
	}
	grow.CapacityRange.RequiredBytes = 3 << 30
	_, err = c.ControllerExpandVolume(e.ctx(10*time.Second), grow)
	if Code(err) != codes.FailedPrecondition {
		t.Fatalf("expand of a held volume = %v, want FailedPrecondition", err)
	}
	t.Logf("error: %v", err)
}
