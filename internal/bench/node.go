package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// NodeSkipReason says why RunNode cannot run here, or "" when it can.
func NodeSkipReason() string {
	if os.Geteuid() != 0 {
		return "the node benchmark needs root for loop devices and mounts"
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mkfs.xfs", "blkdiscard", "mount", "umount", "blkid"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "the node benchmark needs " + tool
		}
	}
	return ""
}

// NodeSample pairs the driver's stage and publish with mkfs and mount by
// hand on the same loop device.
type NodeSample struct {
	FsType       string
	Driver, Hand time.Duration
}

// RunNode attaches a volume through the emulator (which plugs a loop
// device) and, iterations times per filesystem, alternately times
// NodeStage + NodePublish and mkfs + mount by hand, discarding the device
// before each so both format a blank device from scratch.
func RunNode(ctx context.Context, fsTypes []string, iterations int) ([]NodeSample, error) {
	if r := NodeSkipReason(); r != "" {
		return nil, errors.New(r)
	}
	root, err := os.MkdirTemp("", "csi-bench-node-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	devRoot, sysRoot, mnt := filepath.Join(root, "dev"), filepath.Join(root, "sys"), filepath.Join(root, "mnt")
	for _, d := range []string{devRoot, sysRoot, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	srv := servers(1)
	srv[0].Local = true
	emu, err := emulator.Start(emulator.Options{Servers: srv, DevRoot: devRoot, SysRoot: sysRoot})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	cs, err := newController(emu, newCallCounter())
	if err != nil {
		return nil, err
	}
	md, err := metadata.New(metadata.Options{SearchOrder: metadata.SourceMetadataService, URL: emu.URL() + "/openstack/latest/meta_data.json"})
	if err != nil {
		return nil, err
	}
	ns, err := cinder.NewNodeServer(cinder.NodeOptions{Metadata: md, DevRoot: devRoot, SysRoot: sysRoot, KubeletRoot: mnt,
		UdevTrigger: func(context.Context) error { return nil }})
	if err != nil {
		return nil, err
	}
	var out []NodeSample
	for _, fs := range fsTypes {
		s, err := nodeFS(ctx, cs, ns, emu, mnt, fs, iterations)
		out = append(out, s...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func nodeFS(ctx context.Context, cs *cinder.ControllerServer, ns *cinder.NodeServer, emu *emulator.Emulator, mnt, fs string, iterations int) ([]NodeSample, error) {
	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	// 1 GiB: above mkfs.xfs's 300 MiB minimum; the file is sparse.
	cv, err := cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "node-bench-" + fs, VolumeCapabilities: []*csi.VolumeCapability{vc},
		CapacityRange: &csi.CapacityRange{RequiredBytes: gib}})
	if err != nil {
		return nil, err
	}
	volID := cv.GetVolume().GetVolumeId()
	node := nodeID(0)
	pub, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: node, VolumeCapability: vc})
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: node})
		_, _ = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volID})
	}()
	dev, err := filepath.EvalSymlinks(emu.ByIDPath(volID))
	if err != nil {
		return nil, fmt.Errorf("the emulator's device for %s: %w", volID, err)
	}
	staging, target, hand := filepath.Join(mnt, "staging"), filepath.Join(mnt, "pod", "mount"), filepath.Join(mnt, "hand")
	if err := os.MkdirAll(hand, 0o755); err != nil {
		return nil, err
	}
	driver := func() (time.Duration, error) {
		start := time.Now()
		if _, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: volID, StagingTargetPath: staging, VolumeCapability: vc, PublishContext: pub.GetPublishContext()}); err != nil {
			return 0, fmt.Errorf("NodeStageVolume: %w", err)
		}
		if _, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID, StagingTargetPath: staging, TargetPath: target, VolumeCapability: vc, PublishContext: pub.GetPublishContext()}); err != nil {
			return 0, fmt.Errorf("NodePublishVolume: %w", err)
		}
		d := time.Since(start)
		if _, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID, TargetPath: target}); err != nil {
			return 0, err
		}
		_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging})
		return d, err
	}
	byHand := func() (time.Duration, error) { return formatAndMount(fs, dev, hand) }
	var out []NodeSample
	for i := 0; i < iterations; i++ {
		s := NodeSample{FsType: fs}
		// Alternate the order so neither side always gets warm caches.
		first, second := &s.Driver, &s.Hand
		fa, fb := driver, byHand
		if i%2 == 1 {
			first, second, fa, fb = second, first, fb, fa
		}
		for _, step := range []struct {
			d *time.Duration
			f func() (time.Duration, error)
		}{{first, fa}, {second, fb}} {
			// Discarding a loop device punches holes in its file, so it
			// reads as zeros like a new Cinder volume. (wipefs would only
			// clear the magic numbers and leave the rest of the old
			// superblock, which is not what a first stage meets.)
			if err := run("blkdiscard", "-f", dev); err != nil {
				return out, err
			}
			d, err := step.f()
			if err != nil {
				return out, err
			}
			*step.d = d
		}
		out = append(out, s)
	}
	return out, nil
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}

// formatAndMount is what the node service does, by hand: mkfs and mount
// of dev at dir, timed, then unmounted.
func formatAndMount(fs, dev, dir string) (time.Duration, error) {
	force := "-F"
	if fs == "xfs" {
		force = "-f"
	}
	start := time.Now()
	if err := run("mkfs."+fs, force, dev); err != nil {
		return 0, err
	}
	if err := run("mount", "-t", fs, dev, dir); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, run("umount", dir)
}
