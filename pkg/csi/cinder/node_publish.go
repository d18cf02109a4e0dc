package cinder

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// NodePublishVolume implements csi.NodeServer. Mount access: bind-mount the
// staging path at the target, read-only when asked. Block access: bind-mount
// the device onto a file at the target. A repeat finds the mount in place
// and succeeds; mounts never stack.
func (ns *NodeServer) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	volumeID, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := ns.checkNodeRequest(volumeID, pathField{"target_path", &target}, pathField{"staging_target_path", &staging}); err != nil {
		return nil, err
	}
	block, err := validateDeviceRequest(req.GetVolumeCapability(), req.GetPublishContext())
	if err != nil {
		return nil, err
	}
	if target == staging {
		return nil, errInvalid("target_path and staging_target_path are both %s", target)
	}
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID)

	kata := false
	if ns.opts.Kata != nil {
		// Asked before the lock: it may call the Kubernetes API.
		if kata, err = ns.opts.Kata.Wants(ctx, req); err != nil {
			return nil, kataLookupStatus(err, "deciding whether volume %s goes to Kata Containers", volumeID)
		}
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if kata || block {
		dev, err := ns.findDevice(ctx, volumeID, req.GetPublishContext())
		if err != nil {
			return nil, err
		}
		if kata {
			logger.Info("Publishing through Kata direct volume", "targetPath", target, "device", dev.Path)
			if req.GetTargetPath() != target || req.GetStagingTargetPath() != staging {
				req = proto.Clone(req).(*csi.NodePublishVolumeRequest)
				req.TargetPath, req.StagingTargetPath = target, staging
			}
			resp, err := ns.opts.Kata.Publish(ctx, req, dev.Path)
			if err != nil {
				return nil, kataStatus(err, "publishing volume %s as a Kata direct volume", volumeID)
			}
			return resp, nil
		}
		if err := ns.publishBlock(logger, volumeID, dev, target, req.GetReadonly(), singleWriter(req.GetVolumeCapability())); err != nil {
			return nil, err
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := ns.publishMount(ctx, logger, volumeID, staging, target, req.GetReadonly(), singleWriter(req.GetVolumeCapability())); err != nil {
		return nil, err
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// publishMount bind-mounts the staging path at the target, only when the
// staging path holds this volume's disk: a staging path of another volume,
// or any other host directory, is never bind-mounted into a pod.
func (ns *NodeServer) publishMount(ctx context.Context, logger logr.Logger, volumeID, staging, target string, readOnly, exclusive bool) error {
	table, err := ns.readMounts()
	if err != nil {
		return StatusFromError(err, "publishing volume %s", volumeID)
	}
	owns, dev := ns.volumeMounts(ctx, volumeID)
	src, owner := hostpath.Table(table).Owner(staging, owns)
	switch {
	case owner == hostpath.NotMounted:
		return errPrecondition("volume %s is not staged at %s; call NodeStageVolume first", volumeID, staging)
	case dev == nil:
		return errPrecondition("volume %s has no disk on this node, so staging_target_path %s (%s) cannot be its staging mount; refusing to bind-mount it",
			volumeID, staging, hostpath.Describe(src))
	case owner == hostpath.Foreign:
		return errPrecondition("staging_target_path %s holds %s, which is not volume %s (%s); refusing to bind-mount it",
			staging, hostpath.Describe(src), volumeID, dev.Node)
	}
	if m, mounted := table.top(target); mounted {
		if m.Major != src.Major || m.Minor != src.Minor || m.Root != src.Root {
			return errAlreadyExists("target_path %s already holds another mount (%s, device %d:%d)", target, m.Source, m.Major, m.Minor)
		}
		if hasOption(m.MountOptions, "ro") != readOnly {
			return errAlreadyExists("volume %s is already published at %s with readonly=%t", volumeID, target, !readOnly)
		}
		logger.Info("Volume already published", "targetPath", target)
		return nil
	}
	if exclusive {
		for _, m := range table {
			if m.Major == src.Major && m.Minor == src.Minor && m.Root == src.Root && m.MountPoint != staging {
				return errPrecondition("volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s", volumeID, m.MountPoint)
			}
		}
	}
	if err := ensureDir(target); err != nil {
		return err
	}
	if err := ns.bindMount(staging, target, readOnly); err != nil {
		return StatusFromError(err, "bind-mounting volume %s at %s", volumeID, target)
	}
	logger.Info("Published volume", "targetPath", target, "readonly", readOnly)
	return nil
}

func (ns *NodeServer) publishBlock(logger logr.Logger, volumeID string, dev *device.Device, target string, readOnly, exclusive bool) error {
	rdev, err := rdevOf(dev.Node)
	if err != nil {
		return errPrecondition("device %s of volume %s: %v", dev.Path, volumeID, err)
	}
	table, err := ns.readMounts()
	if err != nil {
		return StatusFromError(err, "publishing volume %s", volumeID)
	}
	if m, mounted := table.top(target); mounted {
		// A bind-mounted device node shows devtmpfs in the mount table;
		// the node itself tells which device it is.
		var st unix.Stat_t
		if err := unix.Stat(target, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != rdev {
			return errAlreadyExists("target_path %s already holds another mount (%s)", target, m.Source)
		}
		if hasOption(m.MountOptions, "ro") != readOnly {
			return errAlreadyExists("volume %s is already published at %s with readonly=%t", volumeID, target, !readOnly)
		}
		logger.Info("Block volume already published", "targetPath", target)
		return nil
	}
	if exclusive {
		if other := table.blockTargetOf(rdev); other != "" {
			return errPrecondition("volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s", volumeID, other)
		}
	}
	if err := ensureDir(filepath.Dir(target)); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return errPrecondition("target_path %s is a directory; a block volume is published onto a file", target)
		}
		return StatusFromError(err, "creating the block target %s", target)
	}
	_ = f.Close()
	if err := ns.bindMount(dev.Node, target, readOnly); err != nil {
		return StatusFromError(err, "bind-mounting device %s of volume %s at %s", dev.Node, volumeID, target)
	}
	logger.Info("Published block volume", "targetPath", target, "device", dev.Path, "readonly", readOnly)
	return nil
}

// singleWriter reports whether the capability allows one publish only: the
// CSI spec has NodePublishVolume fail with FailedPrecondition when a
// SINGLE_NODE_SINGLE_WRITER volume is already published at another target.
func singleWriter(vc *csi.VolumeCapability) bool {
	return vc.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
}

// blockTargetOf returns a mount point where the device node rdev is
// bind-mounted, or "". Such a mount shows the device filesystem's number
// in the table, so the mount point itself is examined; only bind mounts of
// a single file (root other than "/") can be one, which keeps stat away
// from whole filesystems such as a hung NFS mount.
func (t mountTable) blockTargetOf(rdev uint64) string {
	for _, m := range t {
		if m.Root == "/" {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(m.MountPoint, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == rdev {
			return m.MountPoint
		}
	}
	return ""
}

// NodeUnpublishVolume implements csi.NodeServer: unmount everything at the
// target and remove it. A target that is already gone is success.
func (ns *NodeServer) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	volumeID, target := req.GetVolumeId(), req.GetTargetPath()
	if err := ns.checkNodeRequest(volumeID, pathField{"target_path", &target}); err != nil {
		return nil, err
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID)

	if ns.opts.Kata != nil && ns.opts.Kata.Holds(target) {
		if !ns.opts.Kata.HoldsVolume(volumeID) {
			return nil, errPrecondition("target_path %s holds a Kata direct volume that is not volume %s; refusing to unpublish it", target, volumeID)
		}
		logger.Info("Unpublishing Kata direct volume", "targetPath", target)
		if req.GetTargetPath() != target {
			req = proto.Clone(req).(*csi.NodeUnpublishVolumeRequest)
			req.TargetPath = target
		}
		resp, err := ns.opts.Kata.Unpublish(ctx, req)
		if err != nil {
			return nil, kataStatus(err, "unpublishing Kata direct volume %s", volumeID)
		}
		return resp, nil
	}
	owns, dev := ns.volumeMounts(ctx, volumeID)
	if err := ns.unmountOwned(volumeID, "target_path", target, owns, dev); err != nil {
		return nil, err
	}
	if err := removePath(target); err != nil {
		if isNotEmpty(err) {
			return nil, errPrecondition("target_path %s is not mounted and is not empty; it is not a target this driver published, so it is left alone", target)
		}
		return nil, StatusFromError(err, "unpublishing volume %s", volumeID)
	}
	logger.Info("Unpublished volume", "targetPath", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
