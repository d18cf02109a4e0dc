package manilanode

import (
	"context"
	"os"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"
)

// NodePublishVolume implements csi.NodeServer: it bind-mounts the volume's
// stage mount at the target, read-only when asked. The staging path must
// be the one this volume was staged at, holding its mount; a broken stage
// mount is mounted again first. A repeat finds the bind and succeeds.
func (ns *NodeServer) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	volumeID := req.GetVolumeId()
	target, err := ns.volumePath(volumeID, "target_path", req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	if err := validateCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	if ns.fwd != nil {
		if req.GetStagingTargetPath() != "" {
			if _, err := ns.resolvePath("staging_target_path", req.GetStagingTargetPath()); err != nil {
				return nil, err
			}
		}
		return ns.forwardPublishRequest(ctx, req)
	}
	staging, err := ns.resolvePath("staging_target_path", req.GetStagingTargetPath())
	if err != nil {
		return nil, err
	}
	if target == staging {
		return nil, errInvalid("target_path and staging_target_path are both %s", target)
	}
	readOnly := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "targetPath", target)

	rec, err := ns.stagedAt(ctx, logger, volumeID, staging)
	if err != nil {
		return nil, err
	}
	table, err := ns.readMounts()
	if err != nil {
		return nil, err
	}
	if err := singleWriterFree(table, rec, req.GetVolumeCapability(), staging, target); err != nil {
		return nil, err
	}
	done, err := ns.publishedAt(logger, table, rec, volumeID, target, readOnly)
	if err != nil {
		return nil, err
	}
	if done {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, statusFromError(err, "creating target_path %s", target)
	}
	if err := ns.mounter.BindMount(staging, target, readOnly); err != nil {
		return nil, statusFromError(err, "publishing volume %s", volumeID)
	}
	logger.Info("Published share", "stagingTargetPath", staging, "readOnly", readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

// publishedAt looks at the target: done when it already holds this
// volume's bind with the same read-only setting; a bind of a broken stage
// mount is removed (done false) so it is bound again; anything else at the
// target is refused.
func (ns *NodeServer) publishedAt(logger logr.Logger, table mountTable, rec *stageRecord, volumeID, target string, readOnly bool) (bool, error) {
	top, mounted := table.top(target)
	if !mounted {
		return false, nil
	}
	if !rec.owns(top) {
		return false, errPrecondition("target_path %s already holds %s, which is not volume %s", target, describe(top), volumeID)
	}
	if rec.Mount.sameFilesystem(top) && !isBroken(target) {
		if isReadOnly(top) != readOnly {
			return false, errPublishedDifferently(volumeID, target, isReadOnly(top))
		}
		logger.V(2).Info("Share already published")
		return true, nil
	}
	logger.Info("Published bind mount is of a broken stage mount; binding it again", "mount", describe(top))
	if err := ns.unmountOwnOf(target, rec); err != nil {
		return false, statusFromError(err, "publishing volume %s", volumeID)
	}
	return false, nil
}

// errPublishedDifferently is the spec's answer to a publish at a target that holds this
// volume with another read-only setting.
func errPublishedDifferently(volumeID, target string, mountedReadOnly bool) error {
	return errAlreadyExists("volume %s is already published at %s with read-only %v; unpublish it first to change that", volumeID, target, mountedReadOnly)
}

// stagedAt returns the record of a volume staged at staging, with its stage
// mount in place: FailedPrecondition when it is not staged there, and a
// broken or vanished stage mount is mounted again from the record.
func (ns *NodeServer) stagedAt(ctx context.Context, logger logr.Logger, volumeID, staging string) (*stageRecord, error) {
	rec, err := ns.store.load(volumeID)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Mount == nil {
		return nil, errPrecondition("volume %s is not staged on this node; NodeStageVolume comes first", volumeID)
	}
	if rec.StagingPath != staging {
		return nil, errPrecondition("volume %s is staged at %s, not at staging_target_path %s", volumeID, rec.StagingPath, staging)
	}
	table, err := ns.readMounts()
	if err != nil {
		return nil, err
	}
	top, mounted := table.top(staging)
	if mounted && !rec.owns(top) {
		return nil, errPrecondition("staging_target_path %s holds %s, not volume %s's stage mount", staging, describe(top), volumeID)
	}
	if mounted && rec.Mount.sameFilesystem(top) && !isBroken(staging) {
		return rec, nil
	}
	logger.Info("Stage mount is broken or gone; mounting it again before publishing", "stagingTargetPath", staging, "mounted", mounted)
	former := rec.formerWith(rec.Mount)
	if mounted {
		if err := ns.unmountOwnOf(staging, rec); err != nil {
			return nil, statusFromError(err, "remounting volume %s", volumeID)
		}
	}
	key := ""
	if rec.Spec.Protocol == ProtocolCephFS {
		data, err := os.ReadFile(ns.store.keyFile(volumeID))
		if err != nil {
			return nil, errPrecondition("the stage mount of volume %s is gone and its cephx key file is too; NodeStageVolume again", volumeID)
		}
		key = string(data)
	}
	if err := ns.mountStage(ctx, logger, &rec.Spec, key, staging, former); err != nil {
		return nil, err
	}
	return ns.store.load(volumeID)
}

// singleWriterFree refuses a second target for a SINGLE_NODE_SINGLE_WRITER
// volume (ReadWriteOncePod): the spec answers FailedPrecondition when such
// a volume is already published at another target on the node.
func singleWriterFree(table mountTable, rec *stageRecord, vc *csi.VolumeCapability, staging, target string) error {
	if vc.GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return nil
	}
	for _, m := range table {
		if m.MountPoint != staging && m.MountPoint != target && rec.owns(m) {
			return errPrecondition("volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s; it cannot be published at %s too", rec.VolumeID, m.MountPoint, target)
		}
	}
	return nil
}

// readOnlyMode reports an access mode that only reads.
func readOnlyMode(vc *csi.VolumeCapability) bool {
	switch vc.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

func isReadOnly(m mount.MountInfo) bool { return slices.Contains(m.MountOptions, "ro") }

// NodeUnpublishVolume implements csi.NodeServer: it unmounts the target if
// it holds this volume's share and removes it. Nothing mounted is success;
// a mount of something else stays, and the answer is FailedPrecondition.
func (ns *NodeServer) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	volumeID := req.GetVolumeId()
	target, err := ns.volumePath(volumeID, "target_path", req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	if ns.fwd != nil {
		return forward(ctx, ns.fwd, "NodeUnpublishVolume", req, ns.fwd.client.NodeUnpublishVolume)
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "targetPath", target)
	table, err := ns.readMounts()
	if err != nil {
		return nil, err
	}
	if top, mounted := table.top(target); mounted {
		rec, err := ns.store.load(volumeID)
		if err != nil {
			return nil, err
		}
		if !rec.owns(top) {
			return nil, errPrecondition("target_path %s holds %s, which is not volume %s; it was left in place", target, describe(top), volumeID)
		}
		if err := retryBusy(ctx, target, func() error { return ns.unmountOwnOf(target, rec) }); err != nil {
			return nil, statusFromError(err, "unpublishing volume %s", volumeID)
		}
	}
	if err := removeDir(target); err != nil {
		return nil, statusFromError(err, "unpublishing volume %s", volumeID)
	}
	logger.Info("Unpublished share")
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// forwardPublishRequest parses the share from the publish request's
// contexts and forwards it.
func (ns *NodeServer) forwardPublishRequest(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	spec, err := parseShareSpec(specInput{
		volumeID: req.GetVolumeId(), capability: req.GetVolumeCapability(), volumeContext: req.GetVolumeContext(),
		publishContext: req.GetPublishContext(), secrets: req.GetSecrets(), defaultProtocol: ns.opts.DefaultProtocol,
	})
	if err != nil {
		return nil, err
	}
	return ns.forwardPublish(ctx, req, spec)
}
