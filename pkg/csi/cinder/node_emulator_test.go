package cinder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/device/devicetest"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// These tests drive the node service with devices the OpenStack emulator
// hot-plugs when the controller attaches a volume to the local server:
// CreateVolume and ControllerPublishVolume go through the real cloud layer
// over HTTP, the emulator plugs a loop device with its by-id, by-path and
// sysfs entries, and the node finds it from the publish context alone. The
// node's identity comes from the emulator's metadata service.

type nodeEmuEnv struct {
	*controllerEnv
	ns       *NodeServer
	mountDir string
	devRoot  string
	sysRoot  string
}

func newNodeEmuEnv(t *testing.T) *nodeEmuEnv {
	t.Helper()
	devicetest.RequireRoot(t, "mkfs.ext4", "mkfs.xfs", "blkid", "xfs_growfs", "resize2fs", "e2fsck", "dumpe2fs")
	devRoot, sysRoot, mountDir := t.TempDir(), t.TempDir(), t.TempDir()
	ce := newControllerEnv(t, withEmulator(func(o *emulator.Options) {
		o.DevRoot, o.SysRoot = devRoot, sysRoot
		o.Servers[0].Local = true
	}))
	// Registered after the emulator's Close, so mounts go before unplugs.
	t.Cleanup(func() {
		for _, mp := range devicetest.MountsUnder(mountDir) {
			if out, err := osexecCombined("umount", mp); err != nil {
				t.Errorf("cleanup: umount %s: %v: %s", mp, err, out)
			}
		}
	})
	md, err := metadata.New(metadata.Options{SearchOrder: metadata.SourceMetadataService, URL: ce.emu.URL() + "/openstack/latest/meta_data.json"})
	if err != nil {
		t.Fatal(err)
	}
	ns := newTestNodeServer(t, NodeOptions{Metadata: md, DevRoot: devRoot, SysRoot: sysRoot, WithTopology: true, KubeletRoot: mountDir})
	return &nodeEmuEnv{controllerEnv: ce, ns: ns, mountDir: mountDir, devRoot: devRoot, sysRoot: sysRoot}
}

func osexecCombined(name string, args ...string) (string, error) { return exec(name, args...) }

func (e *nodeEmuEnv) paths(vol string) (staging, target string) {
	return filepath.Join(e.mountDir, "staging", vol), filepath.Join(e.mountDir, "pods", vol, "mount")
}

func (e *nodeEmuEnv) nodeID() string {
	e.t.Helper()
	info, err := e.ns.NodeGetInfo(e.ctx(), &csi.NodeGetInfoRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	if info.GetNodeId() != nodeA || info.GetAccessibleTopology().GetSegments()[TopologyKey] != testAZ {
		e.t.Fatalf("NodeGetInfo = %v, want node %s in %s", info, nodeA, testAZ)
	}
	return info.GetNodeId()
}

func (e *nodeEmuEnv) attach(vol string) map[string]string {
	e.t.Helper()
	return e.mustPublish(vol, e.nodeID()).GetPublishContext()
}

func (e *nodeEmuEnv) detach(vol string) {
	e.t.Helper()
	if _, err := e.cs.ControllerUnpublishVolume(e.ctx(), &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: nodeA}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *nodeEmuEnv) stage(vol string, vc *csi.VolumeCapability, pc map[string]string) {
	e.t.Helper()
	staging, _ := e.paths(vol)
	if _, err := e.ns.NodeStageVolume(e.ctx(), &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: staging, VolumeCapability: vc, PublishContext: pc}); err != nil {
		e.t.Fatalf("NodeStageVolume: %v", err)
	}
}

func (e *nodeEmuEnv) publish(vol string, vc *csi.VolumeCapability, pc map[string]string) {
	e.t.Helper()
	staging, target := e.paths(vol)
	if _, err := e.ns.NodePublishVolume(e.ctx(), &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: staging, TargetPath: target, VolumeCapability: vc, PublishContext: pc}); err != nil {
		e.t.Fatalf("NodePublishVolume: %v", err)
	}
}

func (e *nodeEmuEnv) unpublishUnstage(vol string) {
	e.t.Helper()
	staging, target := e.paths(vol)
	if _, err := e.ns.NodeUnpublishVolume(e.ctx(), &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target}); err != nil {
		e.t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := e.ns.NodeUnstageVolume(e.ctx(), &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging}); err != nil {
		e.t.Fatalf("NodeUnstageVolume: %v", err)
	}
}

func (e *nodeEmuEnv) expandController(vol string, sizeGiB int64) {
	e.t.Helper()
	if _, err := e.cs.ControllerExpandVolume(e.ctx(), &csi.ControllerExpandVolumeRequest{VolumeId: vol, CapacityRange: &csi.CapacityRange{RequiredBytes: sizeGiB * gib}, VolumeCapability: rwo}); err != nil {
		e.t.Fatalf("ControllerExpandVolume: %v", err)
	}
}

func TestNodeWithEmulatorLifecycleAndGrowth(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			e := newNodeEmuEnv(t)
			vol := e.mustCreate("pvc-node-"+fs, 1)
			vc := mountCap(fs)
			staging, target := e.paths(vol)

			pc := e.attach(vol)
			e.stage(vol, vc, pc)
			e.publish(vol, vc, pc)
			data := []byte("through the emulator's hot-plugged disk\n")
			if err := os.WriteFile(filepath.Join(target, "data"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			stats, err := e.ns.NodeGetVolumeStats(e.ctx(), &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: target})
			if err != nil || stats.GetUsage()[0].GetTotal() <= 0 || stats.GetUsage()[0].GetTotal() > gib {
				t.Fatalf("stats = %v, %v", stats, err)
			}
			before := statfsTotal(t, target)

			if fs == "xfs" {
				// Online: the controller extends the in-use volume, the
				// emulator resizes the loop device, the node grows XFS.
				e.expandController(vol, 2)
				resp, err := e.ns.NodeExpandVolume(e.ctx(), &csi.NodeExpandVolumeRequest{VolumeId: vol, VolumePath: target, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
				if err != nil || resp.GetCapacityBytes() != 2*gib {
					t.Fatalf("NodeExpandVolume = %v, %v", resp, err)
				}
				e.unpublishUnstage(vol)
				e.detach(vol)
			} else {
				// Offline (no CAP_SYS_RESOURCE here): unstage and detach,
				// extend, attach again; stage grows ext4 before mounting.
				e.unpublishUnstage(vol)
				e.detach(vol)
				e.expandController(vol, 2)
			}

			// Restage on a fresh attachment reads the data back.
			pc = e.attach(vol)
			e.stage(vol, vc, pc)
			e.publish(vol, vc, pc)
			if got, err := os.ReadFile(filepath.Join(target, "data")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("after restage read %q, %v", got, err)
			}
			if after := statfsTotal(t, target); after <= before+gib/2 {
				t.Fatalf("%s: %d bytes before growth, %d after", fs, before, after)
			}
			resp, err := e.ns.NodeExpandVolume(e.ctx(), &csi.NodeExpandVolumeRequest{VolumeId: vol, VolumePath: staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
			if err != nil || resp.GetCapacityBytes() != 2*gib {
				t.Fatalf("NodeExpandVolume after growth = %v, %v", resp, err)
			}
			e.unpublishUnstage(vol)
			e.detach(vol)
		})
	}
}

func TestNodeWithEmulatorBlockVolume(t *testing.T) {
	e := newNodeEmuEnv(t)
	vol := e.mustCreate("pvc-node-block", 1)
	vc := blockCap()
	_, target := e.paths(vol)
	pc := e.attach(vol)
	e.stage(vol, vc, pc)
	e.publish(vol, vc, pc)
	payload := bytes.Repeat([]byte{0xc1}, 8192)
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(payload, gib-8192); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := f.ReadAt(got, gib-8192); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back at the end of the block volume: %v", err)
	}
	_ = f.Close()
	e.unpublishUnstage(vol)
	e.detach(vol)
}

// TestNodeWithEmulatorDiscoveryFallbacks removes what udev would have made
// and checks each later lookup step on the emulator's devices.
func TestNodeWithEmulatorDiscoveryFallbacks(t *testing.T) {
	e := newNodeEmuEnv(t)
	vol := e.mustCreate("pvc-node-fallback", 1)
	vc := mountCap("ext4")
	pc := e.attach(vol)

	// No by-id link: the sysfs serial scan finds it.
	if err := os.Remove(e.emu.ByIDPath(vol)); err != nil {
		t.Fatal(err)
	}
	e.stage(vol, vc, pc)
	e.unpublishUnstage(vol)

	// No link and no serial: only the metadata devices list can tell.
	doc, err := e.emu.MetadataJSON(nodeA)
	if err != nil {
		t.Fatal(err)
	}
	var md metadata.Metadata
	if err := json.Unmarshal(doc, &md); err != nil {
		t.Fatal(err)
	}
	entry := md.DiskBySerial(vol)
	if entry == nil {
		t.Fatalf("the emulator's metadata lists no disk for %s", vol)
	}
	if entry.Bus != "pci" {
		// Nova writes the bus type of the address ("pci", "scsi", "ide",
		// "usb"); a disk at 0000:00:07.0 is on "pci".
		t.Fatalf("emulator metadata lists bus %q for a PCI address; Nova writes \"pci\"", entry.Bus)
	}
	matches, _ := filepath.Glob(filepath.Join(e.sysRoot, "block", "*", "serial"))
	for _, m := range matches {
		if b, _ := os.ReadFile(m); strings.HasPrefix(vol, strings.TrimSpace(string(b))) {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.stage(vol, vc, pc)
	e.unpublishUnstage(vol)
	e.detach(vol)
}
