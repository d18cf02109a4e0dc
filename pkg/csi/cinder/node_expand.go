package cinder

import (
	"context"
	"errors"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/fsopts"
)

// NodeExpandVolume implements csi.NodeServer: make the kernel see the new
// size (rescan-on-resize), then grow a mounted ext or XFS filesystem. A raw
// block volume gets the rescan only: a filesystem a user put on it is not
// ours to touch.
func (ns *NodeServer) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	volumeID, volumePath := req.GetVolumeId(), req.GetVolumePath()
	if err := ns.checkVolumeAtPath(volumeID, &volumePath); err != nil {
		return nil, err
	}
	blockCap := false
	if vc := req.GetVolumeCapability(); vc != nil {
		var err error
		if blockCap, err = validateCapability("volume_capability", vc); err != nil {
			return nil, err
		}
	}
	required := req.GetCapacityRange().GetRequiredBytes()
	limit := req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && required > limit) {
		return nil, errInvalid("capacity_range required_bytes %d / limit_bytes %d is not a valid range", required, limit)
	}
	if ns.opts.Kata != nil && ns.opts.Kata.HoldsVolume(volumeID) {
		return nil, errPrecondition("volume %s is published to a Kata Containers pod: online growth needs a pod restart; the Kata agent cannot resize", volumeID)
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID)

	var st unix.Stat_t
	if err := unix.Stat(volumePath, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNotFound("volume_path %s does not exist", volumePath)
		}
		return nil, StatusFromError(err, "volume_path %s", volumePath)
	}
	dev, err := ns.findDevice(ctx, volumeID, nil)
	if err != nil {
		return nil, err
	}
	rdev, err := rdevOf(dev.Node)
	if err != nil {
		return nil, errPrecondition("device %s of volume %s: %v", dev.Path, volumeID, err)
	}
	block := blockCap || st.Mode&unix.S_IFMT == unix.S_IFBLK
	if block && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev != rdev {
		return nil, errNotFound("volume_path %s is not the device of volume %s", volumePath, volumeID)
	}

	if required > dev.SizeBytes && ns.opts.RescanOnResize {
		before := dev.SizeBytes
		if _, err := ns.finder.Rescan(dev); err != nil {
			return nil, StatusFromError(err, "rescanning the device of volume %s", volumeID)
		}
		logger.Info("Rescanned device", "device", dev.Path, "beforeBytes", before, "afterBytes", dev.SizeBytes)
	}
	if required > dev.SizeBytes {
		hint := ""
		if !ns.opts.RescanOnResize {
			hint = " (rescan-on-resize is off)"
		}
		return nil, errNotReady(
			"device %s of volume %s holds %d bytes, less than the requested %d: the hypervisor has not passed the new size to this node yet%s",
			dev.Path, volumeID, dev.SizeBytes, required, hint)
	}
	if block {
		logger.Info("Expanded block volume", "volumePath", volumePath, "capacityBytes", dev.SizeBytes)
		return &csi.NodeExpandVolumeResponse{CapacityBytes: dev.SizeBytes}, nil
	}

	table, err := ns.readMounts()
	if err != nil {
		return nil, StatusFromError(err, "expanding volume %s", volumeID)
	}
	m, mounted := table.top(volumePath)
	if !mounted || uint32(m.Major) != unix.Major(rdev) || uint32(m.Minor) != unix.Minor(rdev) {
		return nil, errNotFound("volume %s is not mounted at volume_path %s", volumeID, volumePath)
	}
	if hasOption(m.SuperOptions, "ro") {
		return nil, errPrecondition("volume %s is mounted read-only at %s; a read-only filesystem cannot grow", volumeID, volumePath)
	}
	switch {
	case fsopts.IsExt(m.FsType):
		grow, err := extNeedsGrowth(ns.mounter.Exec, dev.Path, dev.SizeBytes)
		if err != nil {
			return nil, StatusFromError(err, "checking the filesystem size of volume %s", volumeID)
		}
		if grow {
			if err := resize2fs(ns.mounter.Exec, dev.Path); err != nil {
				return nil, StatusFromError(err, "growing the mounted filesystem of volume %s", volumeID)
			}
		}
	case m.FsType == "xfs":
		if err := growXFS(ns.mounter.Exec, volumePath); err != nil {
			return nil, StatusFromError(err, "growing the mounted filesystem of volume %s", volumeID)
		}
	default:
		return nil, errPrecondition("volume %s holds %s, which this driver cannot grow", volumeID, m.FsType)
	}
	logger.Info("Expanded volume", "volumePath", volumePath, "fsType", m.FsType, "capacityBytes", dev.SizeBytes)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: dev.SizeBytes}, nil
}
