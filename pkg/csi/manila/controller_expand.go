package manila

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ControllerExpandVolume extends a share and waits until it is available
// again. Shares grow online and the node has nothing to do. A share that
// is already at least the requested size is success with its size (the
// CSI spec's idempotency); a limit below the current size is OutOfRange,
// because the driver never shrinks a share, which can lose data.
func (cs *ControllerServer) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, errInvalid("volume_id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, errInvalid("capacity_range is required")
	}
	if vc := req.GetVolumeCapability(); vc != nil {
		if problem := checkCaps([]*csi.VolumeCapability{vc}); problem != "" {
			return nil, errInvalid("volume capability: %s", problem)
		}
	}
	want, limit, err := sizeFromRange(req.GetCapacityRange(), 1)
	if err != nil {
		return nil, err
	}
	release, ok := cs.inFlight.TryAcquire("volume-id:" + id)
	if !ok {
		return nil, errBusy("volume", id)
	}
	defer release()
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	share, err := c.GetShare(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("volume %s not found", id)
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up share %s", id)
	}
	if limit > 0 && share.SizeGiB > limit {
		return nil, errOutOfRange("share %s is %d GiB, above the requested limit of %d GiB; shares are never shrunk", id, share.SizeGiB, limit)
	}
	if share.Status == openstack.ShareExtending {
		share, err = cs.waitExtended(ctx, c, id, 0)
		if err != nil {
			return nil, err
		}
	}
	if share.SizeGiB < want {
		if share.Status != openstack.ShareAvailable {
			return nil, errNotReady("share %s is %s; it can be extended only when available", id, share.Status)
		}
		if err := c.ExtendShare(ctx, id, want); err != nil {
			return nil, StatusFromError(err, "extending share %s to %d GiB", id, want)
		}
		if share, err = cs.waitExtended(ctx, c, id, want); err != nil {
			return nil, err
		}
		klog.InfoS("Extended share", "shareID", id, "sizeGiB", share.SizeGiB)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: int64(share.SizeGiB) * gib, NodeExpansionRequired: false}, nil
}

// waitExtended waits for `extending` to end with the share at least
// wantGiB; extending_error carries Manila's reason (reference #2619). The
// size matters: real Manila answers the extend before the share turns
// `extending`, so a share still `available` at the old size has not begun
// (the rig's first csi-sanity run caught the old size coming back).
func (cs *ControllerServer) waitExtended(ctx context.Context, c openstack.ShareCloud, id string, wantGiB int) (*openstack.Share, error) {
	share, err := c.WaitShare(ctx, id, func(s *openstack.Share) bool {
		return s.Status != openstack.ShareExtending && (s.SizeGiB >= wantGiB || s.Status != openstack.ShareAvailable)
	})
	if reason, failed := errorStateReason(err); failed {
		return nil, errFailedState(reason, "extending share %s failed", id)
	}
	if err != nil {
		return nil, StatusFromError(err, "waiting for share %s to finish extending", id)
	}
	if share.Status != openstack.ShareAvailable {
		return nil, errFailedState(latestReason(ctx, c, id), "extending share %s ended in %s", id, share.Status)
	}
	return share, nil
}
