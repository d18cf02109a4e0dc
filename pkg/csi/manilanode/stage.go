package manilanode

import (
	"context"
	"os"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"
)

// NodeStageVolume implements csi.NodeServer: it mounts the share at the
// staging path (NFS with the kernel client; CephFS with ceph-fuse or the
// kernel client, the cephx key in a 0600 file). A repeat finds the record
// and the mount and succeeds; a staging path holding a mount that is not
// this share's is FailedPrecondition; a broken mount (a dead ceph-fuse) is
// unmounted and mounted again.
func (ns *NodeServer) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	volumeID := req.GetVolumeId()
	staging, err := ns.volumePath(volumeID, "staging_target_path", req.GetStagingTargetPath())
	if err != nil {
		return nil, err
	}
	spec, err := parseShareSpec(specInput{
		volumeID: volumeID, capability: req.GetVolumeCapability(), volumeContext: req.GetVolumeContext(),
		publishContext: req.GetPublishContext(), secrets: req.GetSecrets(), defaultProtocol: ns.opts.DefaultProtocol,
	})
	if err != nil {
		return nil, err
	}
	if ns.fwd != nil {
		return ns.forwardStage(ctx, req, spec)
	}
	key := ""
	if spec.Protocol == ProtocolCephFS {
		if key, err = cephxKey(req.GetSecrets(), req.GetPublishContext()); err != nil {
			return nil, err
		}
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "shareID", spec.ShareID, "stagingTargetPath", staging)

	done, former, err := ns.checkStaged(logger, spec, key, staging)
	if err != nil {
		return nil, err
	}
	if done {
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if err := ns.mountStage(ctx, logger, spec, key, staging, former); err != nil {
		return nil, err
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// checkStaged looks at what is at the staging path already. done means the
// share is staged there and healthy; a broken stage mount of this share
// has been removed (done false, no error) so that it is mounted again, and
// former lists the mounts whose binds are still this volume's.
func (ns *NodeServer) checkStaged(logger logr.Logger, spec *ShareSpec, key, staging string) (done bool, former []*mountID, err error) {
	rec, err := ns.store.load(spec.VolumeID)
	if err != nil {
		return false, nil, err
	}
	table, err := ns.readMounts()
	if err != nil {
		return false, nil, err
	}
	top, mounted := table.top(staging)
	if !mounted {
		former, err := notStagedAt(table, rec, spec, staging)
		return false, former, err
	}
	if rec, err = stageRecordOf(rec, top, spec, staging); err != nil {
		return false, nil, err
	}
	if isBroken(staging) {
		logger.Info("Stage mount is broken (its server or ceph-fuse daemon is gone); mounting it again", "mount", describe(top))
		return false, rec.formerWith(idOf(top)), ns.unmountOwn(staging, idOf(top))
	}
	if key != "" {
		// Refresh the key file: a rotated key reaches the next mount.
		if _, err := ns.store.writeKey(spec.VolumeID, key); err != nil {
			return false, nil, err
		}
	}
	if rec.Mount == nil {
		// A crash after the mount and before the record was completed.
		rec.Mount = idOf(top)
		if err := ns.store.save(rec); err != nil {
			return false, nil, err
		}
	}
	logger.V(2).Info("Share already staged", "mount", describe(top))
	return true, nil, nil
}

// notStagedAt answers for a staging path with nothing mounted: the binds
// of a vanished stage mount of this volume are still its own (former);
// the volume staged and mounted at another path is refused.
func notStagedAt(table mountTable, rec *stageRecord, spec *ShareSpec, staging string) ([]*mountID, error) {
	if rec != nil && rec.StagingPath == staging {
		// The stage mount vanished (a ceph-fuse that died and was
		// unmounted): binds of it are still this volume's.
		return rec.formerWith(rec.Mount), nil
	}
	if rec != nil && rec.StagingPath != staging && rec.Mount != nil {
		if other, ok := table.top(rec.StagingPath); ok && rec.Mount.sameFilesystem(other) {
			return nil, errPrecondition("volume %s is already staged at %s; it cannot be staged at %s too", spec.VolumeID, rec.StagingPath, staging)
		}
	}
	return nil, nil
}

// stageRecordOf checks that top, the mount at the staging path, is this
// volume's stage mount of the same share, and returns its record (a new
// one adopting a mount whose record was lost).
func stageRecordOf(rec *stageRecord, top mount.MountInfo, spec *ShareSpec, staging string) (*stageRecord, error) {
	switch {
	case rec == nil && sourceMatches(top, spec):
		// Staged before the state directory was lost: adopt the mount.
		return &stageRecord{VolumeID: spec.VolumeID, StagingPath: staging, Spec: *spec}, nil
	case rec == nil || rec.StagingPath != staging:
		return nil, errPrecondition("staging_target_path %s already holds %s, which is not volume %s's stage mount", staging, describe(top), spec.VolumeID)
	case !sameShare(&rec.Spec, spec):
		return nil, errPrecondition("volume %s is already staged at %s from %s (%s %s); this request asks for %s (%s %s)",
			spec.VolumeID, staging, rec.Spec.Export, rec.Spec.Protocol, rec.Spec.Mounter, spec.Export, spec.Protocol, spec.Mounter)
	case rec.Mount == nil && !rec.owns(top) && !plausiblyOurs(top, spec):
		return nil, errPrecondition("staging_target_path %s holds %s, which volume %s's unfinished stage cannot have made", staging, describe(top), spec.VolumeID)
	case rec.Mount != nil && !rec.owns(top):
		return nil, errPrecondition("staging_target_path %s holds %s, not the mount volume %s staged there", staging, describe(top), spec.VolumeID)
	}
	return rec, nil
}

// mountStage writes the key file and the record, then mounts, then
// completes the record with the mount's identity. A failed mount leaves
// nothing behind.
func (ns *NodeServer) mountStage(ctx context.Context, logger logr.Logger, spec *ShareSpec, key, staging string, former []*mountID) error {
	keyFile := ""
	if key != "" {
		var err error
		if keyFile, err = ns.store.writeKey(spec.VolumeID, key); err != nil {
			return err
		}
	}
	rec := &stageRecord{VolumeID: spec.VolumeID, StagingPath: staging, Spec: *spec, Former: former}
	if err := ns.store.save(rec); err != nil {
		return err
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return statusFromError(err, "creating staging_target_path %s", staging)
	}
	start := time.Now()
	mountErr := ns.mounter.MountShare(ctx, spec, keyFile, staging)
	table, err := ns.readMounts()
	if err != nil {
		return err
	}
	top, mounted := table.top(staging)
	if mountErr != nil || !mounted {
		if mounted {
			// The helper failed after mounting (a deadline that killed it
			// once it had daemonized): keep the mount, it is this share's.
			logger.Info("Mount helper failed, but the share is mounted; keeping it", "err", mountErr.Error())
		} else {
			ns.dropFailedStage(logger, rec)
			if mountErr == nil {
				return errUnavailable("the %s mount helper succeeded but nothing is mounted at %s", spec.Protocol, staging)
			}
			return mountFailure(mountErr, "mounting share %s (%s) at %s", spec.ShareID, spec.Export, staging)
		}
	}
	rec.Mount = idOf(top)
	if err := ns.store.save(rec); err != nil {
		return err
	}
	logger.Info("Staged share", "protocol", spec.Protocol, "mounter", spec.Mounter, "export", spec.Export.String(), "mount", describe(top), "took", time.Since(start))
	return nil
}

// dropFailedStage removes what a failed mount wrote. A record that still
// knows former stage mounts stays (without a current mount), so that pods'
// binds of them can still be unpublished as this volume's.
func (ns *NodeServer) dropFailedStage(logger logr.Logger, rec *stageRecord) {
	var err error
	if len(rec.Former) > 0 {
		rec.Mount = nil
		err = ns.store.save(rec)
	} else {
		err = ns.store.forget(rec.VolumeID)
	}
	if err != nil {
		logger.Error(err, "Removing the stage record after a failed mount")
	}
}

// NodeUnstageVolume implements csi.NodeServer: it unmounts the stage mount
// if it is this volume's and removes the key file and the record. Nothing
// mounted is success; a mount that is not this volume's stays, and the
// answer is FailedPrecondition naming it.
func (ns *NodeServer) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	volumeID := req.GetVolumeId()
	staging, err := ns.volumePath(volumeID, "staging_target_path", req.GetStagingTargetPath())
	if err != nil {
		return nil, err
	}
	if ns.fwd != nil {
		return forward(ctx, ns.fwd, "NodeUnstageVolume", req, ns.fwd.client.NodeUnstageVolume)
	}
	unlock, err := ns.lock(volumeID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logger := klog.FromContext(ctx).WithValues("volumeID", volumeID, "stagingTargetPath", staging)
	rec, err := ns.store.load(volumeID)
	if err != nil {
		return nil, err
	}
	table, err := ns.readMounts()
	if err != nil {
		return nil, err
	}
	ours := rec != nil && rec.StagingPath == staging
	if top, mounted := table.top(staging); mounted {
		if !ours || !rec.owns(top) && (rec.Mount != nil || !plausiblyOurs(top, &rec.Spec)) {
			return nil, errPrecondition("staging_target_path %s holds %s, which is not volume %s's stage mount; it was left in place", staging, describe(top), volumeID)
		}
		id := rec.Mount
		if id == nil {
			id = idOf(top) // a crash between the mount and the record
		}
		if err := retryBusy(ctx, staging, func() error { return ns.unmountOwn(staging, id) }); err != nil {
			return nil, statusFromError(err, "unstaging volume %s", volumeID)
		}
	}
	if ours {
		if err := ns.store.forget(volumeID); err != nil {
			return nil, statusFromError(err, "unstaging volume %s", volumeID)
		}
	}
	if err := removeDir(staging); err != nil {
		logger.Info("Staging path left in place", "err", err.Error())
	}
	logger.Info("Unstaged share", "hadRecord", ours)
	return &csi.NodeUnstageVolumeResponse{}, nil
}
