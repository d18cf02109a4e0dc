package cinder

import (
	"context"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ControllerModifyVolume applies a VolumeAttributesClass by retyping the
// volume (Cinder os-retype) and waits, within the deadline, until Cinder
// has finished. The volume is looked up first: one that does not exist is
// NotFound whatever the parameters. Empty mutable parameters ask for no
// change and are answered OK (what csi-sanity expects when run without
// --csi.testvolumemutableparameters). The resizer treats only
// InvalidArgument as infeasible, and the spec requires that nothing
// changed then: unknown keys, an unknown type, and a retype Cinder carried
// out without changing the type (no backend takes the new type under
// migration-policy never) are InvalidArgument. A volume already of that
// type is answered at once.
func (cs *ControllerServer) ControllerModifyVolume(ctx context.Context, req *csi.ControllerModifyVolumeRequest) (*csi.ControllerModifyVolumeResponse, error) {
	id := req.GetVolumeId()
	vc, err := cs.openVolume(ctx, id, volumeLock(id), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c, vol := vc.cloud, vc.vol
	if vol == nil {
		return nil, errNotFound("volume %s not found", id)
	}
	if len(req.GetMutableParameters()) == 0 {
		// Nothing asked for: the volume already is what the (empty)
		// VolumeAttributesClass describes.
		klog.FromContext(ctx).V(2).Info("No mutable parameters; nothing to change", "volumeID", id)
		return &csi.ControllerModifyVolumeResponse{}, nil
	}
	want, err := params.ParseMutable(req.GetMutableParameters())
	if err != nil {
		return nil, errInvalid("VolumeAttributesClass parameters: %v", err)
	}
	vt, err := c.GetVolumeType(ctx, want.VolumeType)
	if openstack.IsNotFound(err) {
		return nil, errInvalid("volume type %q does not exist", want.VolumeType)
	}
	if err != nil {
		return nil, StatusFromError(err, "reading volume type %q", want.VolumeType)
	}
	isTarget := func(v *openstack.Volume) bool { return v.VolumeType == vt.Name || v.VolumeType == vt.ID }
	logger := klog.FromContext(ctx).WithValues("volumeID", id, "fromType", vol.VolumeType, "toType", vt.Name)
	if isTarget(vol) && vol.Status != openstack.VolumeRetyping {
		logger.V(2).Info("Volume already has the type")
		return &csi.ControllerModifyVolumeResponse{}, nil
	}

	start := time.Now()
	if err := startRetype(ctx, c, vol, vt, want.MigrationPolicy); err != nil {
		return nil, err
	}

	last, err := c.WaitVolume(ctx, id, func(v *openstack.Volume) bool { return v.Status != openstack.VolumeRetyping })
	server.RecordTiming(ctx, "waitRetyped", time.Since(start))
	if err != nil {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return nil, errInProgress("volume %s is still being retyped to %s", id, vt.Name)
		}
		return nil, StatusFromError(err, "waiting for volume %s to be retyped", id)
	}
	if !isTarget(last) {
		hint := ""
		if want.MigrationPolicy == params.MigrationNever {
			hint = "; if the type needs another backend, set migration-policy: on-demand in the VolumeAttributesClass"
		}
		return nil, errInvalid("Cinder could not retype volume %s to %s and left it at %s (status %s)%s%s",
			id, vt.Name, last.VolumeType, last.Status, reasonSuffix(latestReason(ctx, c, id)), hint)
	}
	logger.Info("Retyped volume", "migrationPolicy", want.MigrationPolicy, "took", time.Since(start))
	return &csi.ControllerModifyVolumeResponse{}, nil
}

// startRetype asks Cinder to retype an available or in-use volume to vt,
// lets a retype already running go on, and refuses the states (and the
// attached multiattach change) that cannot be retyped now.
func startRetype(ctx context.Context, c openstack.Cloud, vol *openstack.Volume, vt *openstack.VolumeType, migrationPolicy string) error {
	id := vol.ID
	switch {
	case migrating(vol.MigrationStatus):
		return errInProgress("volume %s is migrating (%s); it can be retyped once the migration finishes", id, vol.MigrationStatus)
	case vol.Status == openstack.VolumeAvailable || vol.Status == openstack.VolumeInUse:
		if vol.Status == openstack.VolumeInUse && vol.Multiattach != vt.Multiattach {
			// Cinder refuses it; detaching makes it possible, so this is
			// not infeasible.
			return errPrecondition("volume %s is attached; Cinder changes a type to or from multiattach only while the volume is detached", id)
		}
		if err := c.RetypeVolume(ctx, id, vt.Name, migrationPolicy); err != nil {
			return retypeRefused(ctx, c, id, vt.Name, err)
		}
	case vol.Status == openstack.VolumeRetyping:
		// An earlier call's retype is running; the caller waits for it.
	default:
		if isVolumeErrorStatus(vol.Status) {
			return errPrecondition("volume %s is in status %s and cannot be retyped", id, vol.Status)
		}
		return errInProgress("volume %s is %s; it can be retyped once Cinder finishes", id, vol.Status)
	}
	return nil
}

// retypeRefused maps a refused os-retype. Zed answers one 400 for a wrong
// status, an active migration, a group, the same type and a QoS change; our
// read ruled those out, so a 400 means the volume changed since (retry:
// Aborted) unless it is still available or in-use with another type, when
// the refusal is about the request (InvalidArgument: nothing changed).
func retypeRefused(ctx context.Context, c openstack.Cloud, id, newType string, refusal error) error {
	kind := openstack.KindOf(refusal)
	if kind != openstack.KindBadRequest && kind != openstack.KindConflict {
		return StatusFromError(refusal, "retyping volume %s to %s", id, newType)
	}
	v, err := c.GetVolume(ctx, id)
	if err == nil && (v.Status == openstack.VolumeAvailable || v.Status == openstack.VolumeInUse) && v.VolumeType != newType && !migrating(v.MigrationStatus) {
		return errInvalid("Cinder refused to retype volume %s to %s: %v", id, newType, refusal)
	}
	return errInProgress("Cinder refused to retype volume %s to %s while it changed state: %v; retrying", id, newType, refusal)
}
