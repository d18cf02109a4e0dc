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
// size. A block volume needs no node step; a filesystem does.
//
// The os-extend goes first: Cinder refuses every volume it cannot extend
// now (already that large, changing state, in-use below microversion 3.42)
// and changes nothing then, so the volume is read only to explain a
// refusal (whyNotExtended), and the happy path costs no GET. An in-use
// volume needs 3.42; without it the answer is FailedPrecondition, because
// the resizer must then wait for the pod to go.
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
	vc, err := cs.openCall(id, volumeLock(id), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c := vc.cloud

	start := time.Now()
	// The status is not known before sending: inUse=false lets the request
	// go out whatever the microversion, and Cinder's own check (an in-use
	// volume below 3.42 is refused) is explained by whyNotExtended.
	err = c.ExtendVolume(ctx, id, sizeGiB, false)
	switch kind := openstack.KindOf(err); {
	case err == nil:
	case openstack.IsNotFound(err) || kind == openstack.KindConflict || kind == openstack.KindBadRequest:
		vol, rerr := whyNotExtended(ctx, c, id, sizeGiB, err)
		if rerr != nil {
			return nil, rerr
		}
		if vol.Status != openstack.VolumeExtending {
			return expandResponse(vol.SizeGiB, nodeExpansion), nil
		}
		// An earlier call's extend is running: wait for it.
	default:
		return nil, StatusFromError(err, "extending volume %s to %d GiB", id, sizeGiB)
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
	klog.FromContext(ctx).Info("Extended volume", "volumeID", id, "toGiB", last.SizeGiB, "took", time.Since(start))
	return expandResponse(last.SizeGiB, nodeExpansion), nil
}

// whyNotExtended reads a volume whose extend Cinder refused (or answered
// 404). It returns the volume when the refusal is no failure: already at
// least sizeGiB (the answer, with its size) or `extending` (an earlier
// call's extend, to wait for); otherwise the error that explains it.
func whyNotExtended(ctx context.Context, c openstack.Cloud, id string, sizeGiB int, refusal error) (*openstack.Volume, error) {
	vol, err := c.GetVolume(ctx, id)
	switch {
	case openstack.IsNotFound(err):
		return nil, errNotFound("volume %s not found", id)
	case err != nil:
		return nil, StatusFromError(err, "reading volume %s", id)
	case vol.Status == openstack.VolumeExtending || vol.SizeGiB >= sizeGiB:
		return vol, nil
	}
	switch vol.Status {
	case openstack.VolumeAvailable, openstack.VolumeInUse:
		if vol.Status == openstack.VolumeInUse && !c.Features().ExtendInUse {
			return nil, errPrecondition("volume %s is in use and this cloud's Cinder is older than microversion 3.42, so it can only be extended while detached", id)
		}
		// Refused in a state it has left since (or for a reason of
		// Cinder's own): Cinder's message, Aborted for a state conflict.
		return nil, StatusFromError(refusal, "extending volume %s to %d GiB", id, sizeGiB)
	case openstack.VolumeErrorExtending:
		reason := latestReason(ctx, c, id)
		return nil, errPrecondition("volume %s is in status error_extending%s; an administrator must reset it", id, reasonSuffix(reason))
	}
	if isVolumeErrorStatus(vol.Status) {
		return nil, errPrecondition("volume %s is in status %s and cannot be extended", id, vol.Status)
	}
	return nil, errInProgress("volume %s is %s; it can be extended once Cinder finishes", id, vol.Status)
}

func expandResponse(sizeGiB int, nodeExpansion bool) *csi.ControllerExpandVolumeResponse {
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: gibBytes(int64(sizeGiB)), NodeExpansionRequired: nodeExpansion}
}
