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
func (cs *ControllerServer) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	vc, err := cs.openVolume(ctx, id, volumeLock(id), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c, vol := vc.cloud, vc.vol
	if vol == nil {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if vol.Status == openstack.VolumeDetaching {
		// Cinder lists a detaching volume's attachment until the detach
		// is done: not a volume the user left attached.
		return nil, errInProgress("volume %s is detaching; it can be deleted once Cinder finishes", id)
	}
	if nodes := publishedNodes(vol); len(nodes) > 0 {
		return nil, errPrecondition("volume %s is attached to node(s) %s; it must be unpublished first", id, strings.Join(nodes, ", "))
	}
	if vol.Status != openstack.VolumeDeleting {
		if volumeInTransition(vol.Status) {
			return nil, errInProgress("volume %s is %s; it can be deleted once Cinder finishes", id, vol.Status)
		}
		start := time.Now()
		if err := c.DeleteVolume(ctx, id); err != nil {
			if openstack.IsNotFound(err) {
				return &csi.DeleteVolumeResponse{}, nil
			}
			if openstack.KindOf(err) == openstack.KindConflict {
				return nil, deleteRefused(ctx, c, id, err)
			}
			return nil, StatusFromError(err, "deleting volume %s", id)
		}
		defer func() { server.RecordTiming(ctx, "deleteVolume", time.Since(start)) }()
	}
	if err := c.WaitVolumeGone(ctx, id); err != nil {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return nil, errInProgress("volume %s is still being deleted", id)
		}
		return nil, StatusFromError(err, "waiting for volume %s to be deleted", id)
	}
	klog.FromContext(ctx).Info("Deleted volume", "volumeID", id, "name", vol.Name)
	return &csi.DeleteVolumeResponse{}, nil
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

// deleteRefused explains a delete Cinder refused (400 or 409) for a volume
// our read showed deletable. Dependent snapshots need the user unless they
// are all being deleted already; a volume that has since moved into a
// transition, or whose detach Cinder has not finished recording, only
// needs a retry. Anything else is Cinder's own message, for the user.
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
	if vol, err := c.GetVolume(ctx, id); err == nil {
		if volumeInTransition(vol.Status) || len(vol.Attachments) > 0 {
			return errInProgress("Cinder refused to delete volume %s while it is %s with %d attachment(s); retry once it settles", id, vol.Status, len(vol.Attachments))
		}
	}
	return StatusFromError(needsUser(refusal), "deleting volume %s", id)
}
