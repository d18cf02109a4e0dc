package manilanode

import (
	"context"
	"errors"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetVolumeStats implements csi.NodeServer: statfs of the volume's
// stage mount or one of its binds. NFS and CephFS both report the share's
// quota as the filesystem size (ceph-fuse and the kernel client with
// client_quota_df, the default; NFS-Ganesha over CephFS passes it on), so
// the size is the Manila share size. A path that does not hold this
// volume is NotFound (issue 16: never the host root's usage). It reads
// only, so it takes no lock.
func (ns *NodeServer) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	volumeID := req.GetVolumeId()
	if err := validateVolumeID(volumeID); err != nil {
		return nil, err
	}
	path, err := ns.resolveVolumePath(volumeID, req.GetVolumePath())
	if err != nil {
		return nil, err
	}
	if ns.fwd != nil {
		return forward(ctx, ns.fwd, "NodeGetVolumeStats", req, ns.fwd.client.NodeGetVolumeStats)
	}
	if err := ns.holdsVolume(volumeID, path); err != nil {
		return nil, err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		if isBroken(path) {
			return nil, errUnavailable("the mount of volume %s at %s is broken (%v); the next NodeStageVolume or NodePublishVolume mounts it again", volumeID, path, err)
		}
		return nil, statusFromError(err, "statfs of volume %s at %s", volumeID, path)
	}
	bsize := fs.Bsize
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: int64(fs.Blocks) * bsize, Available: int64(fs.Bavail) * bsize, Used: int64(fs.Blocks-fs.Bfree) * bsize},
		{Unit: csi.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree), Used: int64(fs.Files - fs.Ffree)},
	}}, nil
}

// resolveVolumePath resolves volume_path; a path that cannot be this
// volume's (relative, outside the kubelet root) is NotFound, as the spec
// answers for "the volume is not at this path".
func (ns *NodeServer) resolveVolumePath(volumeID, p string) (string, error) {
	if p == "" {
		return "", errInvalid("volume_path is required")
	}
	resolved, err := ns.resolvePath("volume_path", p)
	if status.Code(err) == codes.InvalidArgument && len(p) <= maxPathLength {
		return "", errNotFound("volume %s is not at volume_path %q: %s", volumeID, p, status.Convert(err).Message())
	}
	return resolved, err
}

// holdsVolume checks that path shows the volume's stage mount.
func (ns *NodeServer) holdsVolume(volumeID, path string) error {
	rec, err := ns.store.load(volumeID)
	if err != nil {
		return err
	}
	if rec == nil || rec.Mount == nil {
		return errNotFound("volume %s is not staged on this node", volumeID)
	}
	table, err := ns.readMounts()
	if err != nil {
		return err
	}
	top, mounted := table.top(path)
	if !mounted || !rec.Mount.sameFilesystem(top) {
		return errNotFound("volume %s is not mounted at %s", volumeID, path)
	}
	return nil
}

// Reasons of NodeGetVolumeHealth entries.
const (
	healthNotMounted = "NotMounted"
	healthBroken     = "MountBroken"
)

// NodeGetVolumeHealth implements csi.NodeServer (CSI 1.13 moved the volume
// condition here): INACCESSIBLE for a stage or publish path that does not
// hold the share or whose mount is broken (a dead ceph-fuse, "transport
// endpoint is not connected"), which the next stage or publish repairs.
func (ns *NodeServer) NodeGetVolumeHealth(_ context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	volumeID := req.GetVolumeId()
	if err := validateVolumeID(volumeID); err != nil {
		return nil, err
	}
	p := req.GetVolumePublishPath()
	if p == "" {
		p = req.GetStagingTargetPath()
	}
	var entries []*csi.VolumeHealth_VolumeHealthEntry
	if p != "" {
		path, err := ns.resolveVolumePath(volumeID, p)
		if err != nil {
			return nil, err
		}
		switch err := ns.holdsVolume(volumeID, path); {
		case status.Code(err) == codes.NotFound:
			entries = append(entries, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: healthNotMounted, Message: status.Convert(err).Message()})
		case err != nil && !errors.Is(err, context.Canceled):
			return nil, err
		case isBroken(path):
			entries = append(entries, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: healthBroken,
				Message: "the mount at " + path + " is broken (its server or ceph-fuse daemon is gone); the next NodeStageVolume or NodePublishVolume mounts it again"})
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{VolumeId: volumeID, HealthStatuses: entries}}, nil
}
