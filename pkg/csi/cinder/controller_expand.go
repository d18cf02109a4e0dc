package cinder

import (
	"context"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ControllerExpandVolume extends a volume to the requested size (rounded up
// to GiB) and waits, within the deadline, until Cinder reports the new
// size. A volume already that large is answered at once. An in-use volume
// needs Cinder microversion 3.42; without it the answer is
// FailedPrecondition, because the resizer must then wait for the pod to go.
// A block volume needs no node step; a filesystem does.
func (cs *ControllerServer) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if req.GetCapacityRange() == nil {
		return nil, errInvalid("capacity range is required")
	}
	sizeGiB, _, _, err := sizeFromRange(req.GetCapacityRange(), 1)
	if err != nil {
		return nil, err
	}
	nodeExpansion := !isBlock(req.GetVolumeCapability())
	vc, err := cs.openVolume(ctx, id, volumeLock(id), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c, vol := vc.cloud, vc.vol
	if vol == nil {
		return nil, errNotFound("volume %s not found", id)
	}
	if vol.SizeGiB >= sizeGiB && vol.Status != openstack.VolumeExtending {
		return expandResponse(vol.SizeGiB, nodeExpansion), nil
	}

	start := time.Now()
	if err := startExtend(ctx, c, vol, sizeGiB); err != nil {
		return nil, err
	}

	last, err := c.WaitVolume(ctx, id, func(v *openstack.Volume) bool {
		return v.Status != openstack.VolumeExtending && (v.SizeGiB >= sizeGiB || isVolumeErrorStatus(v.Status))
	})
	server.RecordTiming(ctx, "waitExtended", time.Since(start))
	if last != nil && isVolumeErrorStatus(last.Status) {
		reason := latestReason(ctx, c, id)
		return nil, errFailedState(reason, "Cinder could not extend volume %s (status %s)", id, last.Status)
	}
	if err != nil {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return nil, errInProgress("volume %s is still extending", id)
		}
		return nil, StatusFromError(err, "waiting for volume %s to extend", id)
	}
	klog.FromContext(ctx).Info("Extended volume", "volumeID", id, "fromGiB", vol.SizeGiB, "toGiB", last.SizeGiB, "took", time.Since(start))
	return expandResponse(last.SizeGiB, nodeExpansion), nil
}

// startExtend asks Cinder to extend an available or in-use volume, lets an
// extend already running go on, and refuses the states that cannot be
// extended.
func startExtend(ctx context.Context, c openstack.Cloud, vol *openstack.Volume, sizeGiB int) error {
	id := vol.ID
	switch vol.Status {
	case openstack.VolumeAvailable, openstack.VolumeInUse:
		inUse := vol.Status == openstack.VolumeInUse
		if inUse && !c.Features().ExtendInUse {
			return errPrecondition("volume %s is in use and this cloud's Cinder is older than microversion 3.42, so it can only be extended while detached", id)
		}
		if err := c.ExtendVolume(ctx, vol.ID, sizeGiB, inUse); err != nil {
			return StatusFromError(err, "extending volume %s to %d GiB", id, sizeGiB)
		}
	case openstack.VolumeExtending:
		// An earlier call's extend is running; the caller waits for it.
	case openstack.VolumeErrorExtending:
		reason := latestReason(ctx, c, id)
		return errPrecondition("volume %s is in status error_extending%s; an administrator must reset it", id, reasonSuffix(reason))
	default:
		if isVolumeErrorStatus(vol.Status) {
			return errPrecondition("volume %s is in status %s and cannot be extended", id, vol.Status)
		}
		return errInProgress("volume %s is %s; it can be extended once Cinder finishes", id, vol.Status)
	}
	return nil
}

func expandResponse(sizeGiB int, nodeExpansion bool) *csi.ControllerExpandVolumeResponse {
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: gibBytes(int64(sizeGiB)), NodeExpansionRequired: nodeExpansion}
}
