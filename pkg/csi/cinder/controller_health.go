package cinder

import (
	"context"
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Volume health (CSI 1.13 replaced VolumeCondition with these RPCs). The
// reasons are stable CamelCase strings for machines; messages are for
// people.
const (
	healthReasonErrorStatus       = "CinderErrorStatus"
	healthReasonMaintenance       = "CinderMaintenance"
	healthReasonAttachmentMissing = "InUseWithoutAttachment"
	healthReasonNovaMismatch      = "NovaCinderDisagree"
	healthReasonServerGone        = "AttachedToMissingServer"
)

// ControllerGetVolumeHealth reports one volume's health from Cinder's status
// and, for each attachment Cinder lists, whether Nova agrees.
func (cs *ControllerServer) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if err := checkID("volume", id); err != nil {
		return nil, err
	}
	var (
		c   openstack.Cloud
		vol *openstack.Volume
		err error
	)
	if _, named := req.GetSecrets()[SecretCloudKey]; named {
		if c, err = cs.cloudFor(req.GetSecrets()); err != nil {
			return nil, err
		}
		vol, err = c.GetVolume(ctx, id)
		if openstack.IsNotFound(err) {
			return nil, errNotFound("volume %s not found", id)
		}
		if err != nil {
			return nil, StatusFromError(err, "reading volume %s", id)
		}
	} else if c, vol, err = cs.findVolumeAnyCloud(ctx, id); err != nil {
		return nil, err
	}
	entries := cinderHealth(ctx, c, vol, true)
	novaEntries, err := novaHealth(ctx, c, vol)
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{
		VolumeId:       id,
		HealthStatuses: append(entries, novaEntries...),
	}}, nil
}

// cinderHealth checks what Cinder alone says. withReason fetches the user
// message for an error status (one call; skipped when listing).
func cinderHealth(ctx context.Context, c openstack.Cloud, v *openstack.Volume, withReason bool) []*csi.VolumeHealth_VolumeHealthEntry {
	var out []*csi.VolumeHealth_VolumeHealthEntry
	switch {
	case isVolumeErrorStatus(v.Status):
		msg := fmt.Sprintf("Cinder reports volume %s in status %s", v.ID, v.Status)
		if withReason {
			msg += reasonSuffix(latestReason(ctx, c, v.ID))
		}
		out = append(out, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: healthReasonErrorStatus, Message: msg})
	case v.Status == openstack.VolumeMaintenance:
		out = append(out, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_DEGRADED, Reason: healthReasonMaintenance, Message: fmt.Sprintf("volume %s is in maintenance", v.ID)})
	case v.Status == openstack.VolumeInUse && len(v.Attachments) == 0:
		out = append(out, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_DEGRADED, Reason: healthReasonAttachmentMissing, Message: fmt.Sprintf("volume %s is in-use but Cinder lists no attachment", v.ID)})
	}
	return out
}

// novaHealth checks each Cinder attachment against the server's Nova view.
func novaHealth(ctx context.Context, c openstack.Cloud, v *openstack.Volume) ([]*csi.VolumeHealth_VolumeHealthEntry, error) {
	var out []*csi.VolumeHealth_VolumeHealthEntry
	for _, node := range publishedNodes(v) {
		list, err := c.ListServerAttachments(ctx, node)
		if openstack.IsNotFound(err) {
			out = append(out, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_DEGRADED, Reason: healthReasonServerGone, Message: fmt.Sprintf("Cinder lists an attachment of volume %s to server %s, which Nova does not know", v.ID, node)})
			continue
		}
		if err != nil {
			return nil, StatusFromError(err, "listing attachments of node %s", node)
		}
		if !slices.ContainsFunc(list, func(a openstack.ServerAttachment) bool { return a.VolumeID == v.ID }) {
			out = append(out, &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_DEGRADED, Reason: healthReasonNovaMismatch, Message: fmt.Sprintf("Cinder lists volume %s attached to server %s, but Nova does not", v.ID, node)})
		}
	}
	return out, nil
}

// ControllerListVolumeHealth pages through all clouds like ListVolumes and
// returns the abnormal volumes by Cinder's view only: a Nova check per
// attachment would cost a call per node for every page.
func (cs *ControllerServer) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, errInvalid("max_entries must not be negative")
	}
	vols, next, err := cs.listVolumesRaw(ctx, int(req.GetMaxEntries()), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: next}
	for i := range vols {
		if entries := cinderHealth(ctx, nil, &vols[i], false); len(entries) > 0 {
			resp.Entries = append(resp.Entries, &csi.VolumeHealth{VolumeId: vols[i].ID, HealthStatuses: entries})
		}
	}
	return resp, nil
}
