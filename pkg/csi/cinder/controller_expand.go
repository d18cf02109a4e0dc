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
	switch vol.Status {
	case openstack.VolumeAvailable, openstack.VolumeInUse:
		inUse := vol.Status == openstack.VolumeInUse
		if inUse && !c.Features().ExtendInUse {
			return nil, errPrecondition("volume %s is in use and this cloud's Cinder is older than microversion 3.42, so it can only be extended while detached", id)
		}
		if err := c.ExtendVolume(ctx, id, sizeGiB, inUse); err != nil {
			return nil, StatusFromError(err, "extending volume %s to %d GiB", id, sizeGiB)
		}
	case openstack.VolumeExtending:
		// An earlier call's extend is running; wait for it below.
	case openstack.VolumeErrorExtending:
		reason := latestReason(ctx, c, id)
		return nil, errPrecondition("volume %s is in status error_extending%s; an administrator must reset it", id, reasonSuffix(reason))
	default:
		if isVolumeErrorStatus(vol.Status) {
			return nil, errPrecondition("volume %s is in status %s and cannot be extended", id, vol.Status)
		}
		return nil, errInProgress("volume %s is %s; it can be extended once Cinder finishes", id, vol.Status)
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

func expandResponse(sizeGiB int, nodeExpansion bool) *csi.ControllerExpandVolumeResponse {
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: gibBytes(int64(sizeGiB)), NodeExpansionRequired: nodeExpansion}
}
