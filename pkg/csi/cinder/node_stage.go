package cinder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/fsopts"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// NodeStageVolume implements csi.NodeServer. Mount access: format a blank
// device (never one holding a filesystem), grow the filesystem when the
// device is larger, mount it at the staging path. Block access: find and
// verify the device only.
func (ns *NodeServer) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	volumeID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := ns.checkNodeRequest(volumeID, pathField{"staging_target_path", &staging}); err != nil {
		return nil, err
	}
	block, err := validateDeviceRequest(req.GetVolumeCapability(), req.GetPublishContext())
	if err != nil {
		return nil, err
	}
	resizeRequired, err := parseResizeRequired(req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID)

	dev, err := ns.findDevice(ctx, volumeID, req.GetPublishContext())
	if err != nil {
		return nil, err
	}
	if block {
		logger.Info("Staged block volume", "device", dev.Path)
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if err := ns.stageFilesystem(logger, volumeID, dev, staging, req.GetVolumeCapability(), resizeRequired); err != nil {
		return nil, err
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// parseResizeRequired reads VolumeContextResizeRequired.
func parseResizeRequired(volumeContext map[string]string) (bool, error) {
	v, ok := volumeContext[VolumeContextResizeRequired]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errInvalid("volume_context[%q] = %q is not a boolean", VolumeContextResizeRequired, v)
	}
	return b, nil
}

func (ns *NodeServer) stageFilesystem(logger logr.Logger, volumeID string, dev *device.Device, staging string, vc *csi.VolumeCapability, resizeRequired bool) error {
	rdev, err := rdevOf(dev.Node)
	if err != nil {
		return errPrecondition("device %s of volume %s: %v", dev.Path, volumeID, err)
	}
	table, err := ns.readMounts()
	if err != nil {
		return StatusFromError(err, "staging volume %s", volumeID)
	}
	if m, mounted := table.top(staging); mounted {
		return ns.alreadyStaged(logger, m, rdev, volumeID, dev, staging, vc.GetMount().GetFsType())
	}
	if err := refuseMountedDevice(table, rdev, volumeID, dev); err != nil {
		return err
	}

	if err := ensureDir(staging); err != nil {
		return err
	}
	existing, err := ns.diskFormat(logger, dev.Path)
	if err != nil {
		return StatusFromError(err, "reading the filesystem type on %s", dev.Path)
	}
	fsType, err := stageFsType(existing, vc, volumeID, dev)
	if err != nil {
		return err
	}
	checked, err := ns.growExtBeforeMount(logger, existing, volumeID, dev, resizeRequired)
	if err != nil {
		return err
	}

	options := fsopts.WithNoUUID(fsType, slices.Clone(vc.GetMount().GetMountFlags()))
	readOnly := slices.Contains(options, "ro")
	if err := ns.formatOrCheck(logger, existing, fsType, readOnly, checked, volumeID, dev); err != nil {
		return err
	}
	if err := ns.mountFilesystem(dev.Path, staging, fsType, append(options, "defaults")); err != nil {
		return StatusFromError(err, "mounting volume %s (%s) at %s", volumeID, dev.Path, staging)
	}
	if fsType == "xfs" && existing != "" && !readOnly {
		if err := growXFS(ns.mounter.Exec, staging); err != nil {
			return StatusFromError(err, "growing the XFS filesystem of volume %s", volumeID)
		}
	}
	logger.Info("Staged volume", "stagingTargetPath", staging, "device", dev.Path, "foundBy", dev.FoundBy,
		"fsType", fsType, "formatted", existing == "", "resizeRequired", resizeRequired)
	return nil
}

// alreadyStaged answers a stage whose staging path is mounted: fine (and
// an XFS grown) when it is this volume's device as the requested family,
// refused otherwise.
func (ns *NodeServer) alreadyStaged(logger logr.Logger, m mount.MountInfo, rdev uint64, volumeID string, dev *device.Device, staging, requested string) error {
	if uint32(m.Major) != unix.Major(rdev) || uint32(m.Minor) != unix.Minor(rdev) || m.Root != "/" {
		if ns.finder.SysNameFor(unix.Mkdev(uint32(m.Major), uint32(m.Minor))) == "" {
			ns.staleMount(logger, staging, "the mounted disk is gone from the node")
		}
		return errPrecondition("staging_target_path %s already holds another mount (%s, device %d:%d), not volume %s (%s)",
			staging, m.Source, m.Major, m.Minor, volumeID, dev.Node)
	}
	if requested != "" && !fsopts.SameFamily(requested, m.FsType) {
		return errAlreadyExists("volume %s is already staged at %s as %s, not %s", volumeID, staging, m.FsType, requested)
	}
	if m.FsType == "xfs" && !hasOption(m.SuperOptions, "ro") {
		if err := growXFS(ns.mounter.Exec, staging); err != nil {
			return StatusFromError(err, "growing the XFS filesystem of volume %s", volumeID)
		}
	}
	logger.Info("Volume already staged", "stagingTargetPath", staging, "device", dev.Path)
	return nil
}

// stageFsType is the filesystem to mount: the one the device holds (which
// must be one this driver mounts, of the requested family), else the
// requested one. A partitioned device is refused.
func stageFsType(existing string, vc *csi.VolumeCapability, volumeID string, dev *device.Device) (string, error) {
	requested := vc.GetMount().GetFsType()
	switch {
	case existing == partitionedFormat:
		return "", errPrecondition("device %s of volume %s holds a partition table; refusing to format or mount it", dev.Path, volumeID)
	case existing != "" && !supportedFsTypes[existing] && existing != "ext2":
		return "", errPrecondition("device %s of volume %s holds %s, which this driver does not mount", dev.Path, volumeID, existing)
	case existing != "" && requested == "":
		return existing, nil
	case existing != "" && !fsopts.SameFamily(existing, requested):
		return "", errPrecondition("device %s of volume %s already holds %s but %s was requested; refusing to reformat it", dev.Path, volumeID, existing, requested)
	}
	return fsTypeOf(vc), nil
}

// growExtBeforeMount grows an ext filesystem before mounting: offline growth
// needs no CAP_SYS_RESOURCE and covers restores and clones into a larger
// size as well as an expansion done while the volume was not staged. It
// reports whether e2fsck ran (then no fsck is needed before the mount).
func (ns *NodeServer) growExtBeforeMount(logger logr.Logger, existing, volumeID string, dev *device.Device, resizeRequired bool) (bool, error) {
	if !fsopts.IsExt(existing) {
		return false, nil
	}
	grow, err := extNeedsGrowth(ns.mounter.Exec, dev.Path, dev.SizeBytes)
	if err != nil {
		return false, StatusFromError(err, "checking the filesystem size of volume %s", volumeID)
	}
	if !grow {
		return false, nil
	}
	if err := growExtOffline(ns.mounter.Exec, dev.Path); err != nil {
		return false, StatusFromError(err, "growing the filesystem of volume %s", volumeID)
	}
	logger.Info("Grew the filesystem before mounting", "device", dev.Path, "sizeBytes", dev.SizeBytes, "resizeRequired", resizeRequired)
	return true, nil
}

// formatOrCheck formats a blank device (never for a read-only mount) or
// checks an existing read-write filesystem not checked yet. Done here
// rather than with mount-utils' FormatAndMount: it would probe the device
// with blkid a second time and mount with mount(8), and each process
// costs 10-40 ms on a small node (docs/benchmarks.md, Node).
func (ns *NodeServer) formatOrCheck(logger logr.Logger, existing, fsType string, readOnly, checked bool, volumeID string, dev *device.Device) error {
	switch {
	case existing == "" && readOnly:
		return errPrecondition("device %s of volume %s holds no filesystem and the mount flags ask for read-only; refusing to format it", dev.Path, volumeID)
	case existing == "":
		if err := formatDevice(ns.mounter.Exec, fsType, dev.Path); err != nil {
			return StatusFromError(err, "formatting volume %s (%s)", volumeID, dev.Path)
		}
	case !readOnly && !checked:
		if err := checkFilesystem(logger, ns.mounter.Exec, dev.Path); err != nil {
			return StatusFromError(err, "checking the filesystem of volume %s", volumeID)
		}
	}
	return nil
}

// refuseMountedDevice refuses to format or mount a device that is mounted
// somewhere already (its filesystem, or a bind of its node): it is staged
// or published elsewhere, perhaps for another volume id whose serial it
// also matches, and fsck or mkfs under a mounted filesystem destroys it.
func refuseMountedDevice(table mountTable, rdev uint64, volumeID string, dev *device.Device) error {
	var where []string
	for _, m := range table.ofDevice(rdev) {
		where = append(where, m.MountPoint)
	}
	if target := table.blockTargetOf(rdev); target != "" {
		where = append(where, target)
	}
	if len(where) > 0 {
		return errPrecondition("device %s found for volume %s is already mounted at %v; refusing to format or mount it again", dev.Node, volumeID, where)
	}
	return nil
}

// ensureDir makes a mount point directory, refusing a non-directory.
func ensureDir(path string) error {
	if err := os.MkdirAll(path, 0o750); err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, os.ErrExist) {
			return errPrecondition("%s exists and is not a directory", path)
		}
		return StatusFromError(err, "creating %s", path)
	}
	return nil
}

// NodeUnstageVolume implements csi.NodeServer: sync and unmount the staging
// path. It refuses while the filesystem is still mounted anywhere else (a
// publish that was not undone), and succeeds when there is nothing to do.
func (ns *NodeServer) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	volumeID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := ns.checkNodeRequest(volumeID, pathField{"staging_target_path", &staging}); err != nil {
		return nil, err
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID)

	if ns.opts.Kata != nil && ns.opts.Kata.HoldsVolume(volumeID) {
		// A Kata guest still has the device; unstaging under it would
		// strand the record that says how to restore the staging mount.
		return nil, errPrecondition("volume %s is still published to a Kata guest; unpublish it before unstaging", volumeID)
	}
	table, err := ns.readMounts()
	if err != nil {
		return nil, StatusFromError(err, "unstaging volume %s", volumeID)
	}
	owns, dev := ns.volumeMounts(ctx, volumeID)
	m, owner := hostpath.Table(table).Owner(staging, owns)
	switch owner {
	case hostpath.NotMounted:
		// Block volumes are never mounted at the staging path; a Kata
		// publish unmounts it and restores it on unpublish.
		if err := removePath(staging); err != nil && !isNotEmpty(err) {
			return nil, StatusFromError(err, "unstaging volume %s", volumeID)
		}
		logger.Info("Volume not staged; nothing to do", "stagingTargetPath", staging)
		return &csi.NodeUnstageVolumeResponse{}, nil
	case hostpath.Foreign:
		return nil, errForeignMount(volumeID, "staging_target_path", staging, m, dev)
	}
	var others []string
	for _, o := range table.ofDevice(unix.Mkdev(uint32(m.Major), uint32(m.Minor))) {
		if o.MountPoint != staging {
			others = append(others, o.MountPoint)
		}
	}
	if len(others) > 0 {
		return nil, errPrecondition("volume %s is still mounted at %v; unpublish it before unstaging", volumeID, others)
	}
	if err := syncFilesystem(staging); err != nil {
		if mount.IsCorruptedMnt(err) {
			ns.staleMount(logger, staging, err.Error())
		}
		return nil, StatusFromError(err, "flushing volume %s before unmounting", volumeID)
	}
	if err := ns.unmountOwned(volumeID, "staging_target_path", staging, owns, dev); err != nil {
		return nil, err
	}
	if err := removePath(staging); err != nil && !isNotEmpty(err) {
		return nil, StatusFromError(err, "unstaging volume %s", volumeID)
	}
	logger.Info("Unstaged volume", "stagingTargetPath", staging)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// syncFilesystem flushes the filesystem mounted at path, so that an unmount
// that follows cannot be the first to discover a write error.
func syncFilesystem(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}

// isNotEmpty is true for a remove that failed because a directory still
// has entries: the CO owns that directory, so we leave it.
func isNotEmpty(err error) bool { return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) }
