package cinder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/device/devicetest"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// These tests run the node service against real loop devices laid out as
// hot-plugged virtio disks (pkg/device/devicetest). They need root.

const (
	mib = int64(1) << 20
	// xfsSize is above mkfs.xfs's 300 MiB minimum; the files are sparse.
	xfsSize = 512 * mib
)

type hostEnv struct {
	t  *testing.T
	h  *devicetest.Host
	md *fakeMetadata
	ns *NodeServer
}

func newHostEnv(t *testing.T, opts NodeOptions) *hostEnv {
	t.Helper()
	devicetest.RequireRoot(t, "mkfs.ext4", "mkfs.xfs", "blkid", "xfs_growfs", "resize2fs", "e2fsck", "dumpe2fs")
	h := devicetest.NewHost(t)
	md := &fakeMetadata{md: &metadata.Metadata{UUID: "server-1", AvailabilityZone: "nova"}}
	opts.Metadata, opts.DevRoot, opts.SysRoot, opts.KubeletRoot = md, h.DevRoot, h.SysRoot, h.MountDir
	return &hostEnv{t: t, h: h, md: md, ns: newTestNodeServer(t, opts)}
}

func (e *hostEnv) paths(vol string) (staging, target string) {
	return filepath.Join(e.h.MountDir, "staging", vol), filepath.Join(e.h.MountDir, "pods", vol, "mount")
}

func (e *hostEnv) stage(vol string, vc *csi.VolumeCapability, publishContext, volumeContext map[string]string) error {
	staging, _ := e.paths(vol)
	_, err := e.ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
		VolumeId: vol, StagingTargetPath: staging, VolumeCapability: vc, PublishContext: publishContext, VolumeContext: volumeContext,
	})
	return err
}

func (e *hostEnv) publish(vol string, vc *csi.VolumeCapability, readOnly bool) error {
	staging, target := e.paths(vol)
	_, err := e.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: vol, StagingTargetPath: staging, TargetPath: target, VolumeCapability: vc, Readonly: readOnly,
	})
	return err
}

func (e *hostEnv) unpublish(vol string) error {
	_, target := e.paths(vol)
	_, err := e.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target})
	return err
}

func (e *hostEnv) unstage(vol string) error {
	staging, _ := e.paths(vol)
	_, err := e.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging})
	return err
}

func (e *hostEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// mountsAt counts the mounts stacked at path.
func mountsAt(t *testing.T, path string) int {
	t.Helper()
	n := 0
	for _, mp := range devicetest.MountsUnder(path) {
		if mp == path {
			n++
		}
	}
	return n
}

func statfsTotal(t *testing.T, path string) int64 {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		t.Fatal(err)
	}
	return int64(fs.Blocks) * fs.Bsize
}

func diskFormat(t *testing.T, dev string) string {
	t.Helper()
	out, _ := exec("blkid", "-p", "-s", "TYPE", "-o", "value", dev)
	return strings.TrimSpace(out)
}

func TestNodeFilesystemLifecycle(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			e := newHostEnv(t, NodeOptions{})
			const vol = "5a1f0c2e-0001-4000-8000-000000000001"
			e.h.Plug(t, vol, xfsSize, devicetest.PlugOptions{})
			vc := mountCap(fs)
			staging, target := e.paths(vol)

			e.must(e.stage(vol, vc, nil, nil))
			e.must(e.stage(vol, vc, nil, nil)) // a repeat is a no-op
			if n := mountsAt(t, staging); n != 1 {
				t.Fatalf("%d mounts at the staging path after two stages, want 1", n)
			}
			e.must(e.publish(vol, vc, false))
			e.must(e.publish(vol, vc, false))
			if n := mountsAt(t, target); n != 1 {
				t.Fatalf("%d mounts at the target after two publishes, want 1 (no stacking)", n)
			}
			if err := e.publish(vol, vc, true); codeOf(err) != codes.AlreadyExists {
				t.Fatalf("publish read-only over a read-write publish = %v, want AlreadyExists", err)
			}
			if err := e.stage(vol, mountCap(otherFs(fs)), nil, nil); codeOf(err) != codes.AlreadyExists {
				t.Fatalf("stage as %s over %s = %v, want AlreadyExists", otherFs(fs), fs, err)
			}
			data := []byte("written through the pod's mount\n")
			if err := os.WriteFile(filepath.Join(target, "data"), data, 0o644); err != nil {
				t.Fatal(err)
			}

			stats, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: target})
			e.must(err)
			bytesUsage, inodes := stats.GetUsage()[0], stats.GetUsage()[1]
			if bytesUsage.GetUnit() != csi.VolumeUsage_BYTES || bytesUsage.GetTotal() <= 0 || bytesUsage.GetTotal() > xfsSize ||
				bytesUsage.GetUsed()+bytesUsage.GetAvailable() > bytesUsage.GetTotal() {
				t.Fatalf("byte usage = %v", bytesUsage)
			}
			if inodes.GetUnit() != csi.VolumeUsage_INODES || inodes.GetTotal() <= 0 || inodes.GetUsed() < 2 {
				t.Fatalf("inode usage = %v", inodes)
			}

			if err := e.unstage(vol); codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), target) {
				t.Fatalf("unstage while published = %v, want FailedPrecondition naming %s", err, target)
			}
			e.must(e.unpublish(vol))
			e.must(e.unpublish(vol))
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("target %s still exists after unpublish: %v", target, err)
			}
			e.must(e.unstage(vol))
			e.must(e.unstage(vol))
			if n := mountsAt(t, staging); n != 0 {
				t.Fatalf("%d mounts left at the staging path", n)
			}

			// Restage: the data written before is read back.
			e.must(e.stage(vol, vc, nil, nil))
			e.must(e.publish(vol, vc, true))
			got, err := os.ReadFile(filepath.Join(target, "data"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("after restage read %q, %v; want %q", got, err, data)
			}
			if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
				t.Fatal("wrote through a read-only publish")
			}
			e.must(e.unpublish(vol))
			e.must(e.unstage(vol))
		})
	}
}

func otherFs(fs string) string {
	if fs == "xfs" {
		return "ext4"
	}
	return "xfs"
}

func TestNodeBlockPublishReadsAndWrites(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0002-4000-8000-000000000002"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	vc := blockCap()
	_, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	e.must(e.publish(vol, vc, false))
	if n := mountsAt(t, target); n != 1 {
		t.Fatalf("%d mounts at the block target after two publishes, want 1", n)
	}
	payload := bytes.Repeat([]byte("cinder"), 1000)
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	e.must(err)
	if _, err := f.WriteAt(payload, 4096); err != nil {
		t.Fatal(err)
	}
	e.must(f.Sync())
	e.must(f.Close())
	raw, err := os.Open(d.Loop)
	e.must(err)
	got := make([]byte, len(payload))
	_, err = raw.ReadAt(got, 4096)
	_ = raw.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back through %s: %v, equal=%t", d.Loop, err, bytes.Equal(got, payload))
	}

	stats, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: target})
	e.must(err)
	if u := stats.GetUsage(); len(u) != 1 || u[0].GetTotal() != 64*mib {
		t.Fatalf("block stats = %v, want a total of 64 MiB", u)
	}
	e.must(e.unpublish(vol))
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("block target still exists: %v", err)
	}
	e.must(e.unstage(vol))
}

func TestNodeFindsTheDeviceWithoutAByIDLink(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0003-4000-8000-000000000003"
	e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{NoByID: true})
	e.must(e.stage(vol, mountCap("ext4"), nil, nil))
	e.must(e.unstage(vol))
}

func TestNodeFindsTheDeviceThroughMetadataDevices(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0004-4000-8000-000000000004"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{NoByID: true, NoSerial: true})
	e.md.devices = []metadata.Device{{Type: "disk", Bus: "pci", Serial: vol, Address: d.PCIAddress()}}
	e.must(e.stage(vol, mountCap("ext4"), nil, nil))
	e.must(e.unstage(vol))
}

func TestNodeRefusesADeviceSmallerThanTheVolume(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0005-4000-8000-000000000005"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	pc := map[string]string{PublishContextVolumeSizeBytes: strconv.FormatInt(1<<30, 10)}
	err := e.stage(vol, mountCap("ext4"), pc, nil)
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("stage on a 64 MiB device of a 1 GiB volume = %v, want FailedPrecondition", err)
	}
	if f := diskFormat(t, d.Loop); f != "" {
		t.Fatalf("the refused device was formatted as %s", f)
	}
	pc[PublishContextVolumeSizeBytes] = strconv.FormatInt(64*mib, 10)
	e.must(e.stage(vol, mountCap("ext4"), pc, nil))
	e.must(e.unstage(vol))
}

func TestNodeNeverReformatsADeviceHoldingAnotherFilesystem(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0006-4000-8000-000000000006"
	d := e.h.Plug(t, vol, xfsSize, devicetest.PlugOptions{})
	devicetest.Run(t, "mkfs.xfs", "-q", d.Loop)
	err := e.stage(vol, mountCap("ext4"), nil, nil)
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "refusing to reformat") {
		t.Fatalf("stage ext4 on an XFS device = %v, want FailedPrecondition", err)
	}
	if f := diskFormat(t, d.Loop); f != "xfs" {
		t.Fatalf("device now holds %q, want xfs untouched", f)
	}
	// Without an fs_type the existing filesystem is used.
	e.must(e.stage(vol, mountCap(""), nil, nil))
	e.must(e.unstage(vol))
}

func TestNodeRetriedStageAfterACrashBetweenFormatAndMount(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			e := newHostEnv(t, NodeOptions{})
			const vol = "5a1f0c2e-0007-4000-8000-000000000007"
			d := e.h.Plug(t, vol, xfsSize, devicetest.PlugOptions{})
			// The first attempt formatted the device and left the staging
			// directory, then the plugin died before mounting. A marker
			// written into the fresh filesystem shows it is not reformatted.
			devicetest.Run(t, "mkfs."+fs, "-q", d.Loop)
			scratch := filepath.Join(e.h.MountDir, "scratch")
			e.must(os.MkdirAll(scratch, 0o755))
			devicetest.Run(t, "mount", d.Loop, scratch)
			e.must(os.WriteFile(filepath.Join(scratch, "marker"), []byte("first attempt"), 0o644))
			devicetest.Run(t, "umount", scratch)
			staging, _ := e.paths(vol)
			e.must(os.MkdirAll(staging, 0o750))

			e.must(e.stage(vol, mountCap(fs), nil, nil))
			if got, err := os.ReadFile(filepath.Join(staging, "marker")); err != nil || string(got) != "first attempt" {
				t.Fatalf("marker after the retried stage = %q, %v: the device was reformatted", got, err)
			}
			e.must(e.unstage(vol))
		})
	}
}

func TestNodeStageRefusesAStagingPathHoldingAnotherDevice(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol, other = "5a1f0c2e-0008-4000-8000-000000000008", "5a1f0c2e-0009-4000-8000-000000000009"
	e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	e.h.Plug(t, other, 64*mib, devicetest.PlugOptions{})
	e.must(e.stage(other, mountCap("ext4"), nil, nil))
	otherStaging, _ := e.paths(other)
	_, err := e.ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
		VolumeId: vol, StagingTargetPath: otherStaging, VolumeCapability: mountCap("ext4"),
	})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "another mount") {
		t.Fatalf("stage over another volume's staging mount = %v, want FailedPrecondition", err)
	}
	e.must(e.unstage(other))
}

func TestNodeConcurrentRPCsOnOneVolumeAreAborted(t *testing.T) {
	const vol = "5a1f0c2e-000a-4000-8000-00000000000a"
	searching := make(chan struct{})
	release := make(chan struct{})
	var e *hostEnv
	first := true
	e = newHostEnv(t, NodeOptions{UdevTrigger: func(context.Context) error {
		// The first stage is looking for a device that has not appeared:
		// hold it there while the test sends the concurrent calls.
		if first {
			first = false
			close(searching)
			<-release
			e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
		}
		return nil
	}})
	done := make(chan error, 1)
	go func() { done <- e.stage(vol, mountCap("ext4"), nil, nil) }()
	<-searching
	for name, call := range map[string]func() error{
		"stage":     func() error { return e.stage(vol, mountCap("ext4"), nil, nil) },
		"publish":   func() error { return e.publish(vol, mountCap("ext4"), false) },
		"unpublish": func() error { return e.unpublish(vol) },
		"unstage":   func() error { return e.unstage(vol) },
	} {
		if err := call(); codeOf(err) != codes.Aborted {
			t.Errorf("concurrent %s = %v, want Aborted", name, err)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the first stage failed: %v", err)
	}
	e.must(e.unstage(vol))
}

func TestNodeExpandXFSOnline(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-000b-4000-8000-00000000000b"
	d := e.h.Plug(t, vol, xfsSize, devicetest.PlugOptions{})
	vc := mountCap("xfs")
	_, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	before := statfsTotal(t, target)

	d.Grow(t, 2*xfsSize) // the controller extended the volume
	resp, err := e.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
		VolumeId: vol, VolumePath: target, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * xfsSize},
	})
	e.must(err)
	if resp.GetCapacityBytes() != 2*xfsSize {
		t.Fatalf("NodeExpandVolume capacity = %d, want %d", resp.GetCapacityBytes(), 2*xfsSize)
	}
	if after := statfsTotal(t, target); after <= before+xfsSize/2 {
		t.Fatalf("filesystem %d bytes before, %d after: not grown", before, after)
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

// TestNodeExpandExt4Offline grows ext4 while it is not mounted: this host
// lacks CAP_SYS_RESOURCE, so online resize2fs fails here. The controller
// extends the volume while it is unstaged; the next stage grows the
// filesystem, and NodeExpandVolume then finds nothing left to do.
func TestNodeExpandExt4Offline(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-000c-4000-8000-00000000000c"
	d := e.h.Plug(t, vol, 128*mib, devicetest.PlugOptions{})
	vc := mountCap("ext4")
	staging, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	e.must(os.WriteFile(filepath.Join(target, "data"), []byte("kept"), 0o644))
	before := statfsTotal(t, target)
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))

	d.Grow(t, 256*mib)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	if after := statfsTotal(t, target); after <= before+64*mib {
		t.Fatalf("filesystem %d bytes before, %d after restage: not grown", before, after)
	}
	if got, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(got) != "kept" {
		t.Fatalf("data after growth = %q, %v", got, err)
	}
	resp, err := e.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
		VolumeId: vol, VolumePath: staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 256 * mib},
	})
	e.must(err)
	if resp.GetCapacityBytes() != 256*mib {
		t.Fatalf("capacity = %d, want 256 MiB", resp.GetCapacityBytes())
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

func TestNodeStageGrowsARestoreIntoALargerVolume(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			e := newHostEnv(t, NodeOptions{})
			const vol = "5a1f0c2e-000d-4000-8000-00000000000d"
			d := e.h.Plug(t, vol, xfsSize, devicetest.PlugOptions{})
			// A snapshot of a 512 MiB volume restored into 1 GiB.
			devicetest.Run(t, "mkfs."+fs, "-q", d.Loop)
			d.Grow(t, 2*xfsSize)
			staging, _ := e.paths(vol)
			e.must(e.stage(vol, mountCap(fs), nil, map[string]string{VolumeContextResizeRequired: "true"}))
			if total := statfsTotal(t, staging); total <= xfsSize {
				t.Fatalf("%s holds %d bytes after stage, want more than the source's %d", fs, total, xfsSize)
			}
			e.must(e.unstage(vol))
		})
	}
}

func TestNodeExpandRescansAndReportsASizeNotYetVisible(t *testing.T) {
	e := newHostEnv(t, NodeOptions{RescanOnResize: true})
	const vol = "5a1f0c2e-000e-4000-8000-00000000000e"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	rescan := filepath.Join(d.SysDir(), "device", "rescan")
	e.must(os.MkdirAll(filepath.Dir(rescan), 0o755))
	e.must(os.WriteFile(rescan, nil, 0o644))
	vc := blockCap()
	_, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	_, err := e.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
		VolumeId: vol, VolumePath: target, VolumeCapability: vc, CapacityRange: &csi.CapacityRange{RequiredBytes: 128 * mib},
	})
	if codeOf(err) != codes.Unavailable {
		t.Fatalf("expand beyond the device = %v, want Unavailable", err)
	}
	if got, _ := os.ReadFile(rescan); string(got) != "1" {
		t.Fatalf("rescan was not requested (file holds %q)", got)
	}
	d.Grow(t, 128*mib)
	resp, err := e.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
		VolumeId: vol, VolumePath: target, VolumeCapability: vc, CapacityRange: &csi.CapacityRange{RequiredBytes: 128 * mib},
	})
	e.must(err)
	if resp.GetCapacityBytes() != 128*mib {
		t.Fatalf("block capacity = %d", resp.GetCapacityBytes())
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

func TestNodeVolumeHealth(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-000f-4000-8000-00000000000f"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	vc := mountCap("ext4")
	_, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, false))
	health := func() []string {
		resp, err := e.ns.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: vol, VolumePublishPath: target})
		e.must(err)
		var reasons []string
		for _, h := range resp.GetVolumeHealth().GetHealthStatuses() {
			reasons = append(reasons, h.GetStatus().String()+"/"+h.GetReason())
		}
		return reasons
	}
	if got := health(); len(got) != 0 {
		t.Fatalf("health of a healthy volume = %v", got)
	}
	// The disk under the mount now reports another volume's serial.
	e.must(os.WriteFile(filepath.Join(d.SysDir(), "serial"), []byte("c0ffee00-1111-4d8e-9c59\n"), 0o644))
	if got := strings.Join(health(), " "); !strings.Contains(got, "INACCESSIBLE/SerialMismatch") {
		t.Fatalf("health after the serial changed = %s", got)
	}
	// The disk is gone from the node.
	d.Unplug(t)
	if got := strings.Join(health(), " "); !strings.Contains(got, "INACCESSIBLE/DeviceMissing") {
		t.Fatalf("health after the disk went away = %s", got)
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

func TestNodeKataPublishHandsOverTheDevice(t *testing.T) {
	kata := &fakeKata{wants: true}
	e := newHostEnv(t, NodeOptions{Kata: kata})
	const vol = "5a1f0c2e-0010-4000-8000-000000000010"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	e.must(e.stage(vol, mountCap("ext4"), nil, nil))
	e.must(e.publish(vol, mountCap("ext4"), false))
	_, target := e.paths(vol)
	if len(kata.published) != 1 || kata.published[0] != d.ByIDPath() {
		t.Fatalf("Kata.Publish got %v, want the by-id path %s", kata.published, d.ByIDPath())
	}
	if n := mountsAt(t, target); n != 0 {
		t.Fatalf("%d host mounts at the Kata target, want none", n)
	}
	kata.holds, kata.holdsVolume = true, true
	e.must(e.unpublish(vol))
	if _, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: target}); err != nil {
		t.Fatal(err)
	}
	if kata.unpublished != 1 || kata.stats != 1 {
		t.Fatalf("Kata unpublish/stats calls = %d/%d, want 1/1", kata.unpublished, kata.stats)
	}
	kata.holds, kata.holdsVolume = false, false
	e.must(e.unstage(vol))
}
