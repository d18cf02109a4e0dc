package cinder

import (
	"context"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// DeleteVolume deletes a volume and waits until Cinder has removed it, so a
// deletion that fails (error_deleting) is reported and retried instead of
// leaking. Not found is success. Attached, or with dependent snapshots, is
// FailedPrecondition; still changing state is Aborted.
//
// The DELETE goes first: Cinder refuses every volume that cannot be
// deleted (attached, changing state, with snapshots, already deleting)
// and changes nothing then, so the volume is read only to explain a
// refusal, and the happy path costs no GET.
func (cs *ControllerServer) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	vc, err := cs.openCall(id, volumeLock(id), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c := vc.cloud
	start := time.Now()
	err = c.DeleteVolume(ctx, id)
	switch {
	case openstack.IsNotFound(err):
		return &csi.DeleteVolumeResponse{}, nil
	case openstack.KindOf(err) == openstack.KindConflict:
		if again, rerr := whyNotDeleted(ctx, c, id, err); !again {
			return &csi.DeleteVolumeResponse{}, rerr
		}
	case err != nil:
		return nil, StatusFromError(err, "deleting volume %s", id)
	default:
		defer func() { server.RecordTiming(ctx, "deleteVolume", time.Since(start)) }()
	}
	if err := c.WaitVolumeGone(ctx, id); err != nil {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return nil, errInProgress("volume %s is still being deleted", id)
		}
		return nil, StatusFromError(err, "waiting for volume %s to be deleted", id)
	}
	klog.FromContext(ctx).Info("Deleted volume", "volumeID", id)
	return &csi.DeleteVolumeResponse{}, nil
}

// whyNotDeleted reads a volume whose DELETE Cinder refused. wait is true
// when a delete is already running (wait for it); otherwise err is the
// answer, nil when the volume is gone after all.
func whyNotDeleted(ctx context.Context, c openstack.Cloud, id string, refusal error) (wait bool, err error) {
	vol, err := c.GetVolume(ctx, id)
	switch {
	case openstack.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, StatusFromError(err, "reading volume %s", id)
	case vol.Status == openstack.VolumeDeleting:
		return true, nil
	case vol.Status == openstack.VolumeDetaching:
		// Cinder lists a detaching volume's attachment until the detach
		// is done: not a volume the user left attached.
		return false, errInProgress("volume %s is detaching; it can be deleted once Cinder finishes", id)
	}
	if nodes := publishedNodes(vol); len(nodes) > 0 {
		return false, errPrecondition("volume %s is attached to node(s) %s; it must be unpublished first", id, strings.Join(nodes, ", "))
	}
	if volumeInTransition(vol.Status) {
		return false, errInProgress("volume %s is %s; it can be deleted once Cinder finishes", id, vol.Status)
	}
	return false, deleteRefused(ctx, c, id, refusal)
}

// volumeInTransition lists the statuses Cinder leaves on its own.
func volumeInTransition(status string) bool {
	switch status {
	case openstack.VolumeCreating, openstack.VolumeDownloading, openstack.VolumeAttaching,
		openstack.VolumeDetaching, openstack.VolumeReserved, openstack.VolumeExtending,
		openstack.VolumeBackingUp, openstack.VolumeRestoringBackup, openstack.VolumeUploading,
		openstack.VolumeRetyping, openstack.VolumeAwaitingTransfer:
		return true
	}
	return false
}

// deleteRefused explains a delete Cinder refused (400 or 409) of a volume
// that, read after the refusal, is neither attached nor changing state.
// Dependent snapshots need the user unless they are all being deleted
// already; anything else is Cinder's own message, for the user.
func deleteRefused(ctx context.Context, c openstack.Cloud, id string, refusal error) error {
	if page, err := c.ListSnapshots(ctx, openstack.ListOpts{VolumeID: id}); err == nil && len(page.Items) > 0 {
		var blocking []string
		for _, s := range page.Items {
			if s.Status != openstack.SnapshotDeleting {
				blocking = append(blocking, s.ID+" ("+s.Status+")")
			}
		}
		if len(blocking) == 0 {
			return errInProgress("volume %s still has %d snapshot(s) being deleted; retry when they are gone", id, len(page.Items))
		}
		return errPrecondition("volume %s has snapshot(s) %s; delete them before the volume", id, strings.Join(blocking, ", "))
	}
	return StatusFromError(needsUser(refusal), "deleting volume %s", id)
}
