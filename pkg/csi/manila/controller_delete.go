package manila

import (
	"context"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// DeleteVolume removes a share and everything the driver made for it: its
// access rules, the Secret with its cephx key, a clone's leftover
// intermediate snapshot, and the share itself, also in error or
// error_deleting (reference #3027 leaves those). It waits until the share
// is gone. A share with snapshots is FailedPrecondition naming them: the
// driver never deletes a user's snapshot. A share already gone is success.
func (cs *ControllerServer) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, errInvalid("volume_id is required")
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
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up share %s", id)
	}
	if share.Status != openstack.ShareDeleting {
		if err := cs.refuseWithSnapshots(ctx, c, share); err != nil {
			return nil, err
		}
		if err := cs.dropCloneSnapshot(ctx, c, share.Name); err != nil {
			return nil, err
		}
		if err := cs.revokeAll(ctx, c, share); err != nil {
			return nil, err
		}
		if err := cs.deleteKeySecret(ctx, share); err != nil {
			return nil, err
		}
		if err := c.DeleteShare(ctx, id); err != nil && !openstack.IsNotFound(err) {
			return nil, StatusFromError(needsUser(err), "deleting share %s (status %s)", id, share.Status)
		}
		klog.InfoS("Deleting share", "shareID", id, "status", share.Status)
	}
	if err := c.WaitShareGone(ctx, id); err != nil && !openstack.IsNotFound(err) {
		return nil, StatusFromError(err, "waiting for share %s to be deleted", id)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// refuseWithSnapshots answers FailedPrecondition when the share has
// snapshots other than clone intermediates (which dropCloneSnapshot of
// their own clone removes).
func (cs *ControllerServer) refuseWithSnapshots(ctx context.Context, c openstack.ShareCloud, share *openstack.Share) error {
	var names []string
	marker := ""
	for {
		page, err := c.ListShareSnapshots(ctx, openstack.ShareListOpts{ShareID: share.ID, Marker: marker})
		if err != nil {
			return StatusFromError(err, "listing the snapshots of share %s", share.ID)
		}
		for _, s := range page.Items {
			if s.ShareID == share.ID && s.Status != openstack.ShareSnapshotDeleting {
				names = append(names, s.ID+" ("+s.Name+")")
			}
		}
		if marker = page.NextMarker; marker == "" {
			break
		}
	}
	if len(names) > 0 {
		return errPrecondition("share %s has %d snapshot(s): %s; delete them first", share.ID, len(names), strings.Join(names, ", "))
	}
	return nil
}

// revokeAll revokes every access rule of the share and waits until they
// are gone, so Manila's CephFS driver removes the cephx users and no NFS
// export outlives the share.
func (cs *ControllerServer) revokeAll(ctx context.Context, c openstack.ShareCloud, share *openstack.Share) error {
	if share.Status == openstack.ShareError || share.Status == openstack.ShareErrorDeleting {
		// A share in error may have no backend state to revoke from;
		// Manila drops its rules with it.
		return nil
	}
	rules, err := c.ListAccessRules(ctx, share.ID)
	if err != nil {
		return StatusFromError(err, "listing the access rules of share %s", share.ID)
	}
	return revokeRules(ctx, c, share.ID, rules)
}

func (cs *ControllerServer) deleteKeySecret(ctx context.Context, share *openstack.Share) error {
	ns, name, ok := secretRef(share)
	if !ok || cs.opts.Keys == nil {
		return nil
	}
	if err := cs.opts.Keys.Delete(ctx, ns, name); err != nil {
		return errNotReady("deleting Secret %s/%s with the cephx key of share %s: %v", ns, name, share.ID, err)
	}
	return nil
}
