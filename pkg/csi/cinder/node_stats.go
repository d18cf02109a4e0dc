package cinder

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// NodeGetVolumeStats implements csi.NodeServer: bytes and inodes of a
// mounted filesystem, the size of a block volume. It takes no volume lock:
// it only reads, and kubelet polls it while other RPCs run.
func (ns *NodeServer) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	volumeID, volumePath := req.GetVolumeId(), req.GetVolumePath()
	if err := ns.checkVolumeAtPath(volumeID, &volumePath); err != nil {
		return nil, err
	}
	if sp := req.GetStagingTargetPath(); sp != "" {
		if _, err := ns.root.Resolve("staging_target_path", sp); err != nil {
			return nil, errHostPath(err)
		}
	}
	if ns.opts.Kata != nil && ns.opts.Kata.Holds(volumePath) {
		if !ns.opts.Kata.HoldsVolume(volumeID) {
			return nil, errNotFound("volume %s is not published at %s: it holds another Kata direct volume", volumeID, volumePath)
		}
		resp, err := ns.opts.Kata.Stats(ctx, req)
		if err != nil {
			return nil, kataStatus(err, "stats of Kata direct volume %s", volumeID)
		}
		return resp, nil
	}
	// The mount table first: only a mount of this volume's disk is
	// stat'ed, so no other path's usage is ever reported.
	table, err := ns.readMounts()
	if err != nil {
		return nil, StatusFromError(err, "stats of volume %s", volumeID)
	}
	owns, dev := ns.volumeMounts(ctx, volumeID)
	m, owner := hostpath.Table(table).Owner(volumePath, owns)
	switch owner {
	case hostpath.NotMounted:
		if _, err := os.Lstat(volumePath); errors.Is(err, os.ErrNotExist) {
			return nil, errNotFound("volume_path %s does not exist", volumePath)
		}
		return nil, errNotFound("volume %s is not mounted at volume_path %s", volumeID, volumePath)
	case hostpath.Foreign:
		return nil, errNotFound("volume %s is not published at volume_path %s: it holds %s, not this volume's disk%s",
			volumeID, volumePath, hostpath.Describe(m), deviceNote(dev))
	}
	var st unix.Stat_t
	if err := unix.Stat(volumePath, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNotFound("volume_path %s does not exist", volumePath)
		}
		if mount.IsCorruptedMnt(err) {
			ns.staleMount(klog.FromContext(ctx).WithValues("volumeID", volumeID), volumePath, err.Error())
		}
		return nil, StatusFromError(err, "volume_path %s", volumePath)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		size, err := device.SizeOf(volumePath)
		if err != nil {
			return nil, StatusFromError(err, "reading the size of volume %s", volumeID)
		}
		return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}}}, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(volumePath, &fs); err != nil {
		if mount.IsCorruptedMnt(err) {
			ns.staleMount(klog.FromContext(ctx).WithValues("volumeID", volumeID), volumePath, err.Error())
		}
		return nil, StatusFromError(err, "statfs of volume %s at %s", volumeID, volumePath)
	}
	bsize := fs.Bsize
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{
			Unit:      csi.VolumeUsage_BYTES,
			Total:     int64(fs.Blocks) * bsize,
			Available: int64(fs.Bavail) * bsize,
			Used:      int64(fs.Blocks-fs.Bfree) * bsize,
		},
		{
			Unit:      csi.VolumeUsage_INODES,
			Total:     int64(fs.Files),
			Available: int64(fs.Ffree),
			Used:      int64(fs.Files - fs.Ffree),
		},
	}}, nil
}

// Health reasons, CamelCase as the spec asks.
const (
	healthDeviceMissing  = "DeviceMissing"
	healthSerialMismatch = "SerialMismatch"
	healthNotMounted     = "NotMounted"
	healthWrongDevice    = "WrongDevice"
	healthReadOnly       = "FilesystemReadOnly"
)

// NodeGetVolumeHealth implements csi.NodeServer. CSI 1.13 moved the volume
// condition out of NodeGetVolumeStats into this call. It reports the device
// gone, a mount of another disk or of a disk whose serial no longer names
// the volume (INACCESSIBLE), and a filesystem the kernel turned read-only
// after errors (DEGRADED). Checking is read-only and takes no lock.
func (ns *NodeServer) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	volumeID := req.GetVolumeId()
	if err := validateVolumeID(volumeID); err != nil {
		return nil, err
	}
	path := req.GetVolumePublishPath()
	field := "volume_publish_path"
	if path == "" {
		path, field = req.GetStagingTargetPath(), "staging_target_path"
	}
	if path != "" {
		resolved, err := ns.root.Resolve(field, path)
		if err != nil {
			return nil, errHostPath(err)
		}
		path = resolved
	}
	var entries []*csi.VolumeHealth_VolumeHealthEntry
	add := func(s csi.VolumeHealthErrorType, reason, format string, args ...any) {
		entries = append(entries, &csi.VolumeHealth_VolumeHealthEntry{Status: s, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}

	dev, err := ns.finder.Lookup(ctx, volumeID)
	if err != nil {
		add(csi.VolumeHealthErrorType_INACCESSIBLE, healthDeviceMissing, "no device for volume %s on this node: %v", volumeID, err)
	}
	kata := ns.opts.Kata != nil && path != "" && ns.opts.Kata.Holds(path)
	if path != "" && !kata {
		ns.checkMountHealth(klog.FromContext(ctx).WithValues("volumeID", volumeID), volumeID, path, dev, add)
	}
	if kata {
		// The guest owns the filesystem; only the runtime can say whether
		// it took the volume and how the filesystem is.
		if r, ok := ns.opts.Kata.(KataHealthReporter); ok {
			entries = append(entries, r.Health(ctx, volumeID, path)...)
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{VolumeId: volumeID, HealthStatuses: entries}}, nil
}

func (ns *NodeServer) checkMountHealth(logger logr.Logger, volumeID, path string, dev *device.Device, add func(csi.VolumeHealthErrorType, string, string, ...any)) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if mount.IsCorruptedMnt(err) {
			ns.staleMount(logger, path, err.Error())
		}
		add(csi.VolumeHealthErrorType_INACCESSIBLE, healthNotMounted, "%s: %v", path, err)
		return
	}
	table, err := ns.readMounts()
	if err != nil {
		add(csi.VolumeHealthErrorType_UNKNOWN_VOLUME_HEALTH_TYPE, "MountTableUnreadable", "%v", err)
		return
	}
	m, mounted := table.top(path)
	if !mounted {
		add(csi.VolumeHealthErrorType_INACCESSIBLE, healthNotMounted, "volume %s is not mounted at %s", volumeID, path)
		return
	}
	// The device under the mount: the node itself for a block publish, the
	// filesystem's device otherwise.
	rdev := unix.Mkdev(uint32(m.Major), uint32(m.Minor))
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		rdev = st.Rdev
	}
	sysName := ns.finder.SysNameFor(rdev)
	switch {
	case sysName == "":
		ns.staleMount(logger, path, "the mounted disk is gone from the node")
		add(csi.VolumeHealthErrorType_INACCESSIBLE, healthDeviceMissing, "the disk mounted at %s (%d:%d) is gone from the node", path, unix.Major(rdev), unix.Minor(rdev))
	case !device.SerialMatches(ns.finder.SerialOf(sysName), volumeID) && ns.finder.SerialOf(sysName) != "":
		add(csi.VolumeHealthErrorType_INACCESSIBLE, healthSerialMismatch, "the disk mounted at %s (%s) has serial %q, not volume %s", path, sysName, ns.finder.SerialOf(sysName), volumeID)
	case dev != nil:
		if devRdev, err := rdevOf(dev.Node); err == nil && devRdev != rdev {
			add(csi.VolumeHealthErrorType_INACCESSIBLE, healthWrongDevice, "%s is mounted from %s, but volume %s is %s", path, sysName, volumeID, dev.Node)
		}
	}
	if hasOption(m.SuperOptions, "ro") && hasOption(m.MountOptions, "rw") {
		add(csi.VolumeHealthErrorType_DEGRADED, healthReadOnly, "the filesystem at %s was mounted read-write but is now read-only, usually after I/O or consistency errors", path)
	}
}
