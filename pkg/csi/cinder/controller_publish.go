package cinder

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ControllerPublishVolume attaches a volume to a Nova server through
// os-volume_attachments and waits, within the deadline, until Cinder shows
// it attached there.
//
// Already attached to this node is answered from one GET with no mutating
// call. A second node for a non-multiattach volume is FailedPrecondition. A
// wait cut short by the deadline is Aborted, and the retry waits on the
// same attachment instead of making a second one.
func (cs *ControllerServer) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	volID, nodeID := req.GetVolumeId(), req.GetNodeId()
	if err := checkID("node", nodeID); err != nil {
		return nil, err
	}
	if req.GetVolumeCapability() == nil {
		return nil, errInvalid("volume capability is required")
	}
	multi, problem := checkCaps([]*csi.VolumeCapability{req.GetVolumeCapability()})
	if problem != "" {
		return nil, errInvalid("%s", problem)
	}
	vc, err := cs.openVolume(ctx, volID, attachLock(volID, nodeID), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c, vol := vc.cloud, vc.vol
	if vol == nil {
		return nil, errNotFound("volume %s not found", volID)
	}
	if multi && !vol.Multiattach {
		return nil, errInvalid("volume %s is not multiattach; MULTI_NODE access modes need a multiattach volume type", volID)
	}
	if a, ok := attachmentFor(vol, nodeID); ok && vol.Status != openstack.VolumeDetaching {
		return publishResponse(a.Device, vol.SizeGiB), nil
	}
	if err := checkAttachable(vol, nodeID); err != nil {
		return nil, err
	}

	start := time.Now()
	if err := startAttach(ctx, c, vol, nodeID); err != nil {
		return nil, err
	}

	last, err := c.WaitVolume(ctx, volID, func(v *openstack.Volume) bool {
		_, attached := attachmentFor(v, nodeID)
		return attached && v.Status == openstack.VolumeInUse
	})
	server.RecordTiming(ctx, "waitAttached", time.Since(start))
	if err != nil {
		return nil, attachWaitError(ctx, err, vol, last, nodeID)
	}
	a, _ := attachmentFor(last, nodeID)
	klog.FromContext(ctx).Info("Attached volume", "volumeID", volID, "nodeID", nodeID, "device", a.Device, "took", time.Since(start))
	return publishResponse(a.Device, last.SizeGiB), nil
}

// startAttach asks Nova to attach the volume to the node, or, when an
// attachment is already in progress (reserved, attaching, or a conflict
// answered to our own lost call), makes sure it is this node's.
func startAttach(ctx context.Context, c openstack.Cloud, vol *openstack.Volume, nodeID string) error {
	volID := vol.ID
	needAttach := vol.Status == openstack.VolumeAvailable || (vol.Multiattach && vol.Status == openstack.VolumeInUse)
	if !needAttach {
		// reserved or attaching: an attachment is in progress. Wait for it
		// only if it is ours; Nova knows which server it is for.
		ours, err := novaHasAttachment(ctx, c, nodeID, volID)
		if err != nil {
			return err
		}
		if !ours {
			return errInProgress("volume %s is %s for another node; retry when that finishes", volID, vol.Status)
		}
	} else if _, err := c.AttachVolume(ctx, nodeID, volID, vol.Multiattach); err != nil {
		if openstack.IsNotFound(err) {
			return errNotFound("attaching volume %s: node %s or the volume no longer exists: %v", volID, nodeID, err)
		}
		// A conflict may be our own attachment, made by a call whose answer
		// was lost; then wait on it rather than fail.
		if openstack.KindOf(err) != openstack.KindConflict {
			return StatusFromError(err, "attaching volume %s to node %s", volID, nodeID)
		}
		ours, lerr := novaHasAttachment(ctx, c, nodeID, volID)
		if lerr != nil || !ours {
			return StatusFromError(err, "attaching volume %s to node %s", volID, nodeID)
		}
	}
	return nil
}

// attachWaitError maps a failed wait for the attachment: the deadline
// (Aborted: the attach goes on and the retry waits for it), the volume
// gone, or the cloud's error. vol is the volume before the wait, last the
// last state seen.
func attachWaitError(ctx context.Context, err error, vol, last *openstack.Volume, nodeID string) error {
	volID := vol.ID
	if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
		status := vol.Status
		if last != nil {
			status = last.Status
		}
		return errInProgress("volume %s is still %s on node %s; the attach continues and the retry waits for it", volID, status, nodeID)
	}
	if openstack.IsNotFound(err) {
		return errNotFound("volume %s disappeared while attaching", volID)
	}
	return StatusFromError(err, "waiting for volume %s to attach to node %s", volID, nodeID)
}

// checkAttachable refuses states an attach cannot start from.
func checkAttachable(vol *openstack.Volume, nodeID string) error {
	if m := vol.MigrationStatus; migrating(m) {
		return errInProgress("volume %s is migrating (%s); retry when the migration finishes", vol.ID, m)
	}
	if isVolumeErrorStatus(vol.Status) {
		return errPrecondition("volume %s is in status %s and cannot be attached", vol.ID, vol.Status)
	}
	if vol.Status == openstack.VolumeDetaching && !vol.Multiattach {
		// The attachment Cinder still lists is going away.
		return errInProgress("volume %s is detaching from node %s; retry once the detach is done", vol.ID, strings.Join(publishedNodes(vol), ", "))
	}
	if others := publishedNodes(vol); len(others) > 0 && !vol.Multiattach {
		return errPrecondition("volume %s is attached to node %s; it is not multiattach, so it must be unpublished there before node %s can use it", vol.ID, strings.Join(others, ", "), nodeID)
	}
	switch vol.Status {
	case openstack.VolumeAvailable, openstack.VolumeInUse, openstack.VolumeReserved, openstack.VolumeAttaching:
		return nil
	case openstack.VolumeCreating, openstack.VolumeDownloading:
		return errInProgress("volume %s is still %s", vol.ID, vol.Status)
	case openstack.VolumeMaintenance:
		return errPrecondition("volume %s is in maintenance", vol.ID)
	}
	return errInProgress("volume %s is %s; it can be attached once Cinder finishes", vol.ID, vol.Status)
}

// novaHasAttachment reports whether Nova has an attachment (in any state)
// of volID on serverID.
func novaHasAttachment(ctx context.Context, c openstack.Cloud, serverID, volID string) (bool, error) {
	list, err := c.ListServerAttachments(ctx, serverID)
	if openstack.IsNotFound(err) {
		return false, errNotFound("node %s not found in Nova", serverID)
	}
	if err != nil {
		return false, StatusFromError(err, "listing attachments of node %s", serverID)
	}
	return slices.ContainsFunc(list, func(a openstack.ServerAttachment) bool { return a.VolumeID == volID }), nil
}

// publishResponse carries Nova's device name, which the node uses only as a
// hint cross-checked by serial, and the volume size, which the node checks
// before it formats anything (a wrong-size device is never formatted).
func publishResponse(device string, sizeGiB int) *csi.ControllerPublishVolumeResponse {
	pc := map[string]string{}
	if device != "" {
		pc[PublishContextDevicePath] = device
	}
	if sizeGiB > 0 {
		pc[PublishContextVolumeSizeBytes] = strconv.FormatInt(gibBytes(int64(sizeGiB)), 10)
	}
	return &csi.ControllerPublishVolumeResponse{PublishContext: pc}
}

// ControllerUnpublishVolume detaches a volume from a node (from every node
// when the node id is empty) and waits until Cinder shows it detached.
// A missing node, a missing volume or no attachment is success. An
// attachment stuck in reserved or attaching, which Cinder does not list,
// is found through Nova and removed.
func (cs *ControllerServer) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	volID, nodeID := req.GetVolumeId(), req.GetNodeId()
	if err := checkOptionalID("node", nodeID); err != nil {
		return nil, err
	}
	vc, err := cs.openVolume(ctx, volID, attachLock(volID, nodeID), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer vc.release()
	c, vol := vc.cloud, vc.vol
	if vol == nil {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	nodes := []string{nodeID}
	if nodeID == "" {
		nodes = publishedNodes(vol)
	}
	start := time.Now()
	var waitFor []string
	for _, node := range nodes {
		detaching, err := detachFromNode(ctx, c, vol, node)
		if err != nil {
			return nil, err
		}
		if detaching {
			waitFor = append(waitFor, node)
		}
	}
	if len(waitFor) == 0 {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	last, err := c.WaitVolume(ctx, volID, func(v *openstack.Volume) bool {
		if v.Status == openstack.VolumeDetaching {
			return false
		}
		return !slices.ContainsFunc(waitFor, func(n string) bool { _, still := attachmentFor(v, n); return still })
	})
	server.RecordTiming(ctx, "waitDetached", time.Since(start))
	if err != nil {
		if openstack.IsNotFound(err) {
			return &csi.ControllerUnpublishVolumeResponse{}, nil
		}
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			status := vol.Status
			if last != nil {
				status = last.Status
			}
			return nil, errInProgress("volume %s is still %s from node(s) %s", volID, status, strings.Join(waitFor, ", "))
		}
		return nil, StatusFromError(err, "waiting for volume %s to detach", volID)
	}
	klog.FromContext(ctx).Info("Detached volume", "volumeID", volID, "nodeID", strings.Join(waitFor, ","), "took", time.Since(start))
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// detachFromNode starts the detach of vol from node when there is anything
// to detach, and reports whether the caller must wait for it.
func detachFromNode(ctx context.Context, c openstack.Cloud, vol *openstack.Volume, node string) (bool, error) {
	_, attached := attachmentFor(vol, node)
	if attached && vol.Status == openstack.VolumeDetaching {
		return true, nil // a detach is already running
	}
	if !attached {
		// Nothing to do for a plain available volume. Otherwise an attach
		// may be stuck in reserved/attaching, which only Nova shows.
		if vol.Status == openstack.VolumeAvailable && !vol.Multiattach {
			return false, nil
		}
		list, err := c.ListServerAttachments(ctx, node)
		if openstack.IsNotFound(err) {
			return false, nil // the server is gone, and its attachments with it
		}
		if err != nil {
			return false, StatusFromError(err, "listing attachments of node %s", node)
		}
		if !slices.ContainsFunc(list, func(a openstack.ServerAttachment) bool { return a.VolumeID == vol.ID }) {
			return false, nil
		}
	}
	if err := c.DetachVolume(ctx, node, vol.ID); err != nil {
		if openstack.IsNotFound(err) {
			return false, nil
		}
		return false, StatusFromError(err, "detaching volume %s from node %s", vol.ID, node)
	}
	return true, nil
}

// migrating reports a Cinder migration_status of a migration still running
// (finished ones stay as success or error).
func migrating(migrationStatus string) bool {
	switch migrationStatus {
	case "", "success", "error", "none":
		return false
	}
	return true
}
