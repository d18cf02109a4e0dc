package cinder

import (
	"context"
	"errors"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/device"
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
	blockCap, required, err := checkExpandRequest(req)
	if err != nil {
		return nil, err
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

	dev, rdev, block, err := ns.deviceAtPath(ctx, volumeID, volumePath, blockCap)
	if err != nil {
		return nil, err
	}
	if err := ns.ensureDeviceSize(logger, volumeID, dev, required); err != nil {
		return nil, err
	}
	if block {
		logger.Info("Expanded block volume", "volumePath", volumePath, "capacityBytes", dev.SizeBytes)
		return &csi.NodeExpandVolumeResponse{CapacityBytes: dev.SizeBytes}, nil
	}
	fsType, err := ns.growFilesystem(volumeID, volumePath, dev, rdev)
	if err != nil {
		return nil, err
	}
	logger.Info("Expanded volume", "volumePath", volumePath, "fsType", fsType, "capacityBytes", dev.SizeBytes)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: dev.SizeBytes}, nil
}

// checkExpandRequest checks the capability (when given) and the capacity
// range; it reports whether the capability is raw block and the required
// size.
func checkExpandRequest(req *csi.NodeExpandVolumeRequest) (blockCap bool, required int64, err error) {
	if vc := req.GetVolumeCapability(); vc != nil {
		if blockCap, err = validateCapability("volume_capability", vc); err != nil {
			return false, 0, err
		}
	}
	required = req.GetCapacityRange().GetRequiredBytes()
	limit := req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && required > limit) {
		return false, 0, errInvalid("capacity_range required_bytes %d / limit_bytes %d is not a valid range", required, limit)
	}
	return blockCap, required, nil
}

// deviceAtPath finds the volume's device and checks volume_path against
// it: a block volume_path must be that device. It returns the device, its
// device number and whether the volume is raw block.
func (ns *NodeServer) deviceAtPath(ctx context.Context, volumeID, volumePath string, blockCap bool) (*device.Device, uint64, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(volumePath, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, false, errNotFound("volume_path %s does not exist", volumePath)
		}
		return nil, 0, false, StatusFromError(err, "volume_path %s", volumePath)
	}
	dev, err := ns.findDevice(ctx, volumeID, nil)
	if err != nil {
		return nil, 0, false, err
	}
	rdev, err := rdevOf(dev.Node)
	if err != nil {
		return nil, 0, false, errPrecondition("device %s of volume %s: %v", dev.Path, volumeID, err)
	}
	block := blockCap || st.Mode&unix.S_IFMT == unix.S_IFBLK
	if block && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev != rdev {
		return nil, 0, false, errNotFound("volume_path %s is not the device of volume %s", volumePath, volumeID)
	}
	return dev, rdev, block, nil
}

// ensureDeviceSize makes the kernel see the new size (a rescan, when
// rescan-on-resize is on) and answers "not yet" while the device is
// smaller than required.
func (ns *NodeServer) ensureDeviceSize(logger klog.Logger, volumeID string, dev *device.Device, required int64) error {
	if required > dev.SizeBytes && ns.opts.RescanOnResize {
		before := dev.SizeBytes
		if _, err := ns.finder.Rescan(dev); err != nil {
			return StatusFromError(err, "rescanning the device of volume %s", volumeID)
		}
		logger.Info("Rescanned device", "device", dev.Path, "beforeBytes", before, "afterBytes", dev.SizeBytes)
	}
	if required > dev.SizeBytes {
		hint := ""
		if !ns.opts.RescanOnResize {
			hint = " (rescan-on-resize is off)"
		}
		return errNotReady(
			"device %s of volume %s holds %d bytes, less than the requested %d: the hypervisor has not passed the new size to this node yet%s",
			dev.Path, volumeID, dev.SizeBytes, required, hint)
	}
	return nil
}

// growFilesystem grows the filesystem the device holds, mounted
// read-write at volumePath, and returns its type.
func (ns *NodeServer) growFilesystem(volumeID, volumePath string, dev *device.Device, rdev uint64) (string, error) {
	table, err := ns.readMounts()
	if err != nil {
		return "", StatusFromError(err, "expanding volume %s", volumeID)
	}
	m, mounted := table.top(volumePath)
	if !mounted || uint32(m.Major) != unix.Major(rdev) || uint32(m.Minor) != unix.Minor(rdev) {
		return "", errNotFound("volume %s is not mounted at volume_path %s", volumeID, volumePath)
	}
	if hasOption(m.SuperOptions, "ro") {
		return "", errPrecondition("volume %s is mounted read-only at %s; a read-only filesystem cannot grow", volumeID, volumePath)
	}
	switch {
	case fsopts.IsExt(m.FsType):
		grow, err := extNeedsGrowth(ns.mounter.Exec, dev.Path, dev.SizeBytes)
		if err != nil {
			return "", StatusFromError(err, "checking the filesystem size of volume %s", volumeID)
		}
		if grow {
			if err := resize2fs(ns.mounter.Exec, dev.Path); err != nil {
				return "", StatusFromError(err, "growing the mounted filesystem of volume %s", volumeID)
			}
		}
	case m.FsType == "xfs":
		if err := growXFS(ns.mounter.Exec, volumePath); err != nil {
			return "", StatusFromError(err, "growing the mounted filesystem of volume %s", volumeID)
		}
	default:
		return "", errPrecondition("volume %s holds %s, which this driver cannot grow", volumeID, m.FsType)
	}
	return m.FsType, nil
}
