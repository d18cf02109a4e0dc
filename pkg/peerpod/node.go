package peerpod

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
	"github.com/cinder-csi/cinder-csi/pkg/kata"
)

// Record metadata cloud-api-adaptor's proxy reads: the disk id it hands the
// pod VM's agent (cloud-volume-path wins over device).
const (
	MetaCloudVolumePath = "cloud-volume-path"
	MetaCloudVolumeID   = "cloud-volume-id"
	defaultFSType       = "ext4"
	targetDirMode       = 0o750
)

// InfoServer answers NodeGetInfo (the Cinder node service: node id and
// availability zone, so volumes are created where the pod VMs run).
type InfoServer interface {
	NodeGetInfo(ctx context.Context, req *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error)
}

// NodeServer is the peer-pod driver's node service on the worker. The
// volume is never attached to the worker, so there is nothing to stage:
// NodePublish writes the Kata direct-volume record (type directvol,
// device = the Cinder volume id) that cloud-api-adaptor's proxy turns
// into the pod VM's cloud volume, and creates the empty target directory
// the container mount names; NodeUnpublish removes both.
type NodeServer struct {
	csi.UnimplementedNodeServer
	info  InfoServer
	gate  *PodGate
	store *kata.Store
	root  *hostpath.Root
}

// NewNodeServer returns the node service. gate checks each publish's pod
// (required: the node fails closed), recordRoot is the Kata record root
// (kata.DefaultRecordRoot when empty), kubeletRoot kubelet's --root-dir:
// targets must lie beneath it.
func NewNodeServer(info InfoServer, gate *PodGate, recordRoot, kubeletRoot string) (*NodeServer, error) {
	if gate == nil {
		return nil, errors.New("the peer-pod node needs a pod gate (NewPodGate)")
	}
	if kubeletRoot == "" {
		kubeletRoot = hostpath.DefaultKubeletRoot
	}
	root, err := hostpath.NewRoot(kubeletRoot)
	if err != nil {
		return nil, err
	}
	store := kata.NewStore(recordRoot)
	if n, err := store.CleanStaleTemps(); err != nil {
		return nil, err
	} else if n > 0 {
		klog.InfoS("Removed stale temporary Kata records", "count", n, "root", store.Root())
	}
	return &NodeServer{info: info, gate: gate, store: store, root: root}, nil
}

// NodeGetInfo is the Cinder node's.
func (ns *NodeServer) NodeGetInfo(ctx context.Context, req *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return ns.info.NodeGetInfo(ctx, req)
}

// NodeGetCapabilities advertises no staging (nothing reaches the worker), no stats
// (usage is only known inside the pod VM), no node expansion (the
// filesystem is the VM's). SINGLE_NODE_MULTI_WRITER is advertised because
// kubelet (csi-lib-utils' access mode mapping) only sends ReadWriteOncePod
// as SINGLE_NODE_SINGLE_WRITER to a driver that does; the mode itself is
// refused.
func (ns *NodeServer) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return capability.Node([]csi.NodeServiceCapability_RPC_Type{csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER}), nil
}

// NodePublishVolume writes the record and creates the target, only for a
// pod whose RuntimeClass is a peer-pod one (PodGate): any other pod is
// refused with nothing written.
func (ns *NodeServer) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	volID, target := req.GetVolumeId(), req.GetTargetPath()
	resolved, err := ns.checkPaths(volID, target)
	if err != nil {
		return nil, err
	}
	mi, err := record(req)
	if err != nil {
		return nil, err
	}
	if err := ns.gate.check(ctx, volID, req.GetVolumeContext()); err != nil {
		return nil, err
	}
	if err := ns.store.Write(target, mi); err != nil {
		switch {
		case errors.Is(err, kata.ErrPathTooLong):
			return nil, errInvalid("target path %s: %v", hostpath.Quote(target), err)
		case errors.Is(err, kata.ErrRecordConflict):
			return nil, status(alreadyExists, "target %s: %v; unpublish it first", hostpath.Quote(target), err)
		}
		return nil, status(internal, "writing the direct-volume record of %s: %v", hostpath.Quote(target), err)
	}
	if err := os.Mkdir(resolved, targetDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, status(internal, "creating target %s: %v", hostpath.Quote(target), err)
	}
	klog.InfoS("Published peer-pod volume (direct-volume record for cloud-api-adaptor)", "volumeID", volID, "target", target)
	return &csi.NodePublishVolumeResponse{}, nil
}

// checkPaths is every publish and unpublish's opening: a well-formed volume
// id, and the target beneath the kubelet root (InvalidArgument otherwise,
// nothing touched). It returns the resolved target.
func (ns *NodeServer) checkPaths(volID, target string) (string, error) {
	if err := hostpath.CheckID("volume id", volID); err != nil {
		return "", errInvalid("%v", err)
	}
	resolved, err := ns.root.Resolve("target path", target)
	if err != nil {
		return "", errInvalid("%v", err)
	}
	return resolved, nil
}

// record builds the direct-volume record of a publish. Only the filesystem
// access type with ReadWriteOncePod: the pod VM's agent mounts the disk,
// and two VMs mounting one filesystem would corrupt it.
func record(req *csi.NodePublishVolumeRequest) (*kata.MountInfo, error) {
	c := req.GetVolumeCapability()
	if c == nil {
		return nil, errInvalid("volume capability is required")
	}
	if c.GetMount() == nil {
		return nil, errInvalid("peer-pod volumes need the filesystem access type (volumeMode: Filesystem); cloud-api-adaptor mounts the disk in the pod VM")
	}
	if m := c.GetAccessMode().GetMode(); m != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return nil, errPrecondition("peer-pod volumes need the ReadWriteOncePod access mode (SINGLE_NODE_SINGLE_WRITER), got %s", m)
	}
	fstype := c.GetMount().GetFsType()
	if fstype == "" {
		fstype = defaultFSType
	}
	opts := append([]string(nil), c.GetMount().GetMountFlags()...)
	if req.GetReadonly() {
		opts = append(opts, "ro")
	}
	volID := req.GetVolumeId()
	return &kata.MountInfo{
		VolumeType: kata.VolumeTypeDirect,
		Device:     volID,
		FsType:     fstype,
		Options:    opts,
		Metadata: map[string]string{
			MetaCloudVolumePath: volID,
			MetaCloudVolumeID:   volID,
			kata.MetaVolumeID:   volID,
		},
	}, nil
}

// NodeUnpublishVolume removes the record and the target; both missing is
// success.
func (ns *NodeServer) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	volID, target := req.GetVolumeId(), req.GetTargetPath()
	resolved, err := ns.checkPaths(volID, target)
	if err != nil {
		return nil, err
	}
	if mi, err := ns.store.Read(target); err == nil && mi.Metadata[kata.MetaVolumeID] != volID {
		return nil, status(alreadyExists, "target %s holds the record of volume %q, not %q", hostpath.Quote(target), mi.Metadata[kata.MetaVolumeID], volID)
	}
	if err := ns.store.Remove(target); err != nil {
		return nil, status(internal, "removing the direct-volume record of %s: %v", hostpath.Quote(target), err)
	}
	if err := os.Remove(resolved); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status(internal, "removing target %s: %v", hostpath.Quote(target), err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeStageVolume is never called (no STAGE_UNSTAGE capability).
func (ns *NodeServer) NodeStageVolume(context.Context, *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	return nil, errUnimplemented("peer-pod volumes are not staged: they are never attached to the worker")
}

// NodeUnstageVolume is never called (no STAGE_UNSTAGE capability).
func (ns *NodeServer) NodeUnstageVolume(context.Context, *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	return nil, errUnimplemented("peer-pod volumes are not staged: they are never attached to the worker")
}

// NodeGetVolumeStats is Unimplemented: the filesystem lives in the pod VM.
func (ns *NodeServer) NodeGetVolumeStats(context.Context, *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	return nil, errUnimplemented("usage of a peer-pod volume is only known inside the pod VM; its capacity is the Cinder volume's size (ControllerGetVolume)")
}

// NodeExpandVolume is Unimplemented: the filesystem lives in the pod VM.
func (ns *NodeServer) NodeExpandVolume(context.Context, *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	return nil, errUnimplemented("a peer-pod volume's filesystem is grown inside the pod VM, not on the worker; expand it while no pod uses it")
}
