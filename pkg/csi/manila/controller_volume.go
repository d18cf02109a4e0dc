package manila

import (
	"context"
	"math"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// MetaCloneSource records the share a clone was made from, so a retry of
// CreateVolume can tell "the same clone" from "the same name, another
// source".
const MetaCloneSource = "manila.csi.openstack.org/clone-source"

// createRequest is a validated CreateVolume.
type createRequest struct {
	name     string
	params   *params.Volume
	protocol string
	sizeGiB  int
	limitGiB int // 0 = no limit
	// Content source: at most one is set.
	snapshotID   string
	sourceShare  string
	requirements *csi.TopologyRequirement
}

// CreateVolume makes a share (empty, from a snapshot, or a clone of
// another share), waits until it is available, sets up the access that
// does not depend on a node, and returns the volume context the node
// mounts from. The request name is the idempotency key: a share of that
// name with our ownership metadata is adopted, whatever state a crashed
// earlier call left it in.
func (cs *ControllerServer) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	cr, err := cs.validateCreate(req)
	if err != nil {
		return nil, err
	}
	release, ok := cs.inFlight.TryAcquire("volume-name:" + cr.name)
	if !ok {
		return nil, errBusy("volume", cr.name)
	}
	defer release()
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	share, err := cs.ensureShare(ctx, c, cr)
	if err != nil {
		return nil, err
	}
	vc, err := cs.prepareAccess(ctx, c, share, cr.params)
	if err != nil {
		return nil, err
	}
	if cr.sourceShare != "" {
		if err := cs.dropCloneSnapshot(ctx, c, cr.name); err != nil {
			return nil, err
		}
	}
	klog.InfoS("Share ready", "volumeName", cr.name, "shareID", share.ID, "sizeGiB", share.SizeGiB, "protocol", share.Protocol)
	return &csi.CreateVolumeResponse{Volume: cs.csiVolume(share, vc.Map(), req.GetVolumeContentSource())}, nil
}

func (cs *ControllerServer) validateCreate(req *csi.CreateVolumeRequest) (*createRequest, error) {
	if req.GetName() == "" {
		return nil, errInvalid("volume name is required")
	}
	if problem := checkCaps(req.GetVolumeCapabilities()); problem != "" {
		return nil, errInvalid("volume capabilities: %s", problem)
	}
	p, err := params.ParseVolume(req.GetParameters())
	if err != nil {
		return nil, errInvalid("StorageClass parameters: %v", err)
	}
	cr := &createRequest{name: req.GetName(), params: p, protocol: p.Protocol, requirements: req.GetAccessibilityRequirements()}
	if cr.protocol == "" {
		cr.protocol = cs.opts.DefaultProtocol
	}
	cr.sizeGiB, cr.limitGiB, err = sizeFromRange(req.GetCapacityRange(), cs.opts.DefaultShareSizeGiB)
	if err != nil {
		return nil, err
	}
	if src := req.GetVolumeContentSource(); src != nil {
		switch {
		case src.GetSnapshot() != nil:
			if cr.snapshotID = src.GetSnapshot().GetSnapshotId(); cr.snapshotID == "" {
				return nil, errInvalid("volume content source: snapshot_id is required")
			}
		case src.GetVolume() != nil:
			if cr.sourceShare = src.GetVolume().GetVolumeId(); cr.sourceShare == "" {
				return nil, errInvalid("volume content source: volume_id is required")
			}
		default:
			return nil, errInvalid("volume content source: only snapshots and volumes are supported")
		}
	}
	return cr, nil
}

// sizeFromRange turns a capacity range into whole GiB (Manila's unit),
// rounding the required size up. A range no whole GiB fits is OutOfRange.
func sizeFromRange(r *csi.CapacityRange, defGiB int) (size, limit int, err error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || lim < 0 {
		return 0, 0, errInvalid("capacity range: negative bytes (required %d, limit %d)", req, lim)
	}
	if lim > 0 && req > lim {
		return 0, 0, errInvalid("capacity range: required_bytes %d is above limit_bytes %d", req, lim)
	}
	const maxGiB = math.MaxInt32 // Manila sizes are 32-bit GiB counts
	if req > maxGiB*gib {
		return 0, 0, errOutOfRange("capacity range: %d bytes is more than Manila's largest share (%d GiB)", req, maxGiB)
	}
	if lim > 0 {
		limit = int(min(lim/gib, maxGiB))
	}
	switch {
	case req > 0:
		size = int((req + gib - 1) / gib)
	case limit > 0:
		size = min(defGiB, limit)
	default:
		size = defGiB
	}
	if size == 0 || (lim > 0 && int64(size)*gib > lim) {
		return 0, 0, errOutOfRange("capacity range [%d, %d] bytes holds no whole GiB, and Manila shares are sized in GiB", req, lim)
	}
	return size, limit, nil
}

// ensureShare finds the request's share by name or creates it, and waits
// until it is available. A share that went to error is deleted and the
// RPC fails with Manila's reason; the retry then finds it deleting
// (Aborted) or gone (a fresh create).
func (cs *ControllerServer) ensureShare(ctx context.Context, c openstack.ShareCloud, cr *createRequest) (*openstack.Share, error) {
	found, err := c.FindSharesByName(ctx, cr.name, cs.ownerMeta())
	if err != nil {
		return nil, StatusFromError(err, "looking up share %q", cr.name)
	}
	var share *openstack.Share
	switch len(found) {
	case 0:
		if share, err = cs.createShare(ctx, c, cr); err != nil {
			return nil, err
		}
	case 1:
		share = &found[0]
		if problem := compatible(share, cr); problem != "" {
			return nil, errAlreadyExists("share %s named %q exists but %s", share.ID, cr.name, problem)
		}
	default:
		ids := make([]string, 0, len(found))
		for _, s := range found {
			ids = append(ids, s.ID)
		}
		return nil, errPrecondition("%d shares are named %q (%s); delete the extra ones", len(found), cr.name, strings.Join(ids, ", "))
	}
	return cs.waitAvailable(ctx, c, share, "volume "+cr.name)
}

// waitAvailable waits until the share leaves its creating states and
// answers by the state it reached.
func (cs *ControllerServer) waitAvailable(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, what string) (*openstack.Share, error) {
	if share.Status != openstack.ShareAvailable {
		got, err := c.WaitShare(ctx, share.ID, func(s *openstack.Share) bool {
			return s.Status != openstack.ShareCreating && s.Status != openstack.ShareCreatingFromSnapshot && s.Status != openstack.ShareExtending
		})
		if reason, failed := errorStateReason(err); failed {
			return nil, cs.discardFailed(ctx, c, share.ID, reason, what)
		}
		if err != nil {
			return nil, StatusFromError(err, "waiting for share %s (%s) to become available", share.ID, what)
		}
		share = got
	}
	switch share.Status {
	case openstack.ShareAvailable:
		return share, nil
	case openstack.ShareDeleting:
		return nil, errInProgress("share %s (%s) is being deleted; retry once it is gone", share.ID, what)
	case openstack.ShareError:
		return nil, cs.discardFailed(ctx, c, share.ID, latestReason(ctx, c, share.ID), what)
	}
	return nil, errInProgress("share %s (%s) is %s; retry later", share.ID, what, share.Status)
}

// discardFailed deletes a share Manila put in error (reference #3027
// leaves them) and returns the error the RPC answers with Manila's reason.
func (cs *ControllerServer) discardFailed(ctx context.Context, c openstack.ShareCloud, id, reason, what string) error {
	if reason == "" {
		reason = latestReason(ctx, c, id)
	}
	if err := c.DeleteShare(ctx, id); err != nil && !openstack.IsNotFound(err) {
		klog.ErrorS(err, "Deleting a failed share", "shareID", id)
		return errFailedState(reason, "share %s (%s) went to error, and deleting it failed (%v)", id, what, err)
	}
	return errFailedState(reason, "share %s (%s) went to error and was deleted", id, what)
}

// compatible explains why an existing share does not match the request,
// or returns "".
func compatible(s *openstack.Share, cr *createRequest) string {
	switch {
	case !strings.EqualFold(s.Protocol, cr.protocol):
		return "its protocol is " + s.Protocol + ", not " + cr.protocol
	case s.SizeGiB < cr.sizeGiB:
		return "it is smaller than requested"
	case cr.limitGiB > 0 && s.SizeGiB > cr.limitGiB:
		return "it is larger than the requested limit"
	case cr.snapshotID != "" && s.SnapshotID != cr.snapshotID:
		return "it was not created from snapshot " + cr.snapshotID
	case cr.sourceShare != "" && s.Metadata[MetaCloneSource] != cr.sourceShare:
		return "it is not a clone of volume " + cr.sourceShare
	case cr.snapshotID == "" && cr.sourceShare == "" && s.SnapshotID != "":
		return "it was created from snapshot " + s.SnapshotID
	}
	return ""
}

// csiVolume renders a share as a CSI volume.
func (cs *ControllerServer) csiVolume(s *openstack.Share, vc map[string]string, src *csi.VolumeContentSource) *csi.Volume {
	v := &csi.Volume{
		VolumeId:      s.ID,
		CapacityBytes: int64(s.SizeGiB) * gib,
		VolumeContext: vc,
		ContentSource: src,
	}
	if cs.opts.WithTopology && s.AvailabilityZone != "" {
		v.AccessibleTopology = []*csi.Topology{{Segments: map[string]string{TopologyKey: s.AvailabilityZone}}}
	}
	return v
}

// checkCaps returns a problem with the capabilities, or "". Shares are
// file systems: block is refused; every access mode is served.
func checkCaps(caps []*csi.VolumeCapability) string {
	if len(caps) == 0 {
		return "at least one volume capability is required"
	}
	for _, c := range caps {
		switch {
		case c.GetBlock() != nil:
			return "block access is not supported: Manila shares are file systems"
		case c.GetMount() == nil:
			return "an access type (mount) is required"
		case !fsTypeServed(c.GetMount().GetFsType()):
			return "fs_type " + quote(c.GetMount().GetFsType()) + " is not a shared file system type (use nfs, nfs4, ceph, cephfs or leave it empty)"
		}
		switch c.GetAccessMode().GetMode() {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
		default:
			return "access mode " + c.GetAccessMode().GetMode().String() + " is not supported"
		}
	}
	return ""
}

func fsTypeServed(fs string) bool {
	switch strings.ToLower(fs) {
	case "", "nfs", "nfs4", "ceph", "cephfs", "fuse.ceph-fuse", "ceph-fuse":
		return true
	}
	return false
}
