package manila

import (
	"context"
	"math"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ListVolumes pages through the shares of the default cloud that carry our
// ownership metadata (all the project's shares without --cluster-id).
// Tokens are Manila's markers; an unusable one is Aborted, as the spec asks.
func (cs *ControllerServer) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	page, err := cs.listShares(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: page.NextMarker}
	for i := range page.Items {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: cs.listedVolume(&page.Items[i])})
	}
	return resp, nil
}

func (cs *ControllerServer) listShares(ctx context.Context, maxEntries int32, token string) (openstack.Page[openstack.Share], error) {
	if maxEntries < 0 {
		return openstack.Page[openstack.Share]{}, errInvalid("max_entries must not be negative")
	}
	c, err := cs.cloudFor(ctx, nil)
	if err != nil {
		return openstack.Page[openstack.Share]{}, err
	}
	page, err := c.ListShares(ctx, openstack.ShareListOpts{Metadata: cs.ownerMeta(), Limit: int(maxEntries), Marker: token})
	if err != nil {
		if token != "" && (openstack.IsNotFound(err) || openstack.KindOf(err) == openstack.KindBadRequest) {
			return page, errInProgress("starting_token %q is no longer valid: %v", token, err)
		}
		return page, StatusFromError(err, "listing shares")
	}
	return page, nil
}

func (cs *ControllerServer) listedVolume(s *openstack.Share) *csi.Volume {
	return cs.csiVolume(s, map[string]string{params.CtxShareID: s.ID, params.CtxProtocol: canonicalProtocol(s.Protocol)}, nil)
}

// ControllerGetVolume reports one share.
func (cs *ControllerServer) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	_, s, err := cs.getShareNoSecrets(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeResponse{Volume: cs.listedVolume(s), Status: &csi.ControllerGetVolumeResponse_VolumeStatus{}}, nil
}

// ControllerGetVolumeHealth reports a share as inaccessible when Manila has
// it in an error status, with Manila's reason (CSI 1.13's replacement of
// VolumeCondition).
func (cs *ControllerServer) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	c, s, err := cs.getShareNoSecrets(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	entries := shareHealth(s)
	if len(entries) > 0 {
		if reason := latestReason(ctx, c, s.ID); reason != "" {
			entries[0].Message += ": " + reason
		}
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{VolumeId: s.ID, HealthStatuses: entries}}, nil
}

// ControllerListVolumeHealth pages like ListVolumes and returns the shares
// in an error status.
func (cs *ControllerServer) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	page, err := cs.listShares(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: page.NextMarker}
	for i := range page.Items {
		if entries := shareHealth(&page.Items[i]); len(entries) > 0 {
			resp.Entries = append(resp.Entries, &csi.VolumeHealth{VolumeId: page.Items[i].ID, HealthStatuses: entries})
		}
	}
	return resp, nil
}

func (cs *ControllerServer) getShareNoSecrets(ctx context.Context, id string) (openstack.ShareCloud, *openstack.Share, error) {
	if id == "" {
		return nil, nil, errInvalid("volume_id is required")
	}
	c, err := cs.cloudFor(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.GetShare(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, nil, errNotFound("volume %s not found", id)
	}
	if err != nil {
		return nil, nil, StatusFromError(err, "looking up share %s", id)
	}
	return c, s, nil
}

// healthReasonErrorStatus is the machine-readable reason of an unhealthy share.
const healthReasonErrorStatus = "ManilaErrorStatus"

func shareHealth(s *openstack.Share) []*csi.VolumeHealth_VolumeHealthEntry {
	if !isShareErrorStatus(s.Status) {
		return nil
	}
	return []*csi.VolumeHealth_VolumeHealthEntry{{
		Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: healthReasonErrorStatus,
		Message: "Manila reports share " + s.ID + " as " + s.Status,
	}}
}

// GetCapacity reports what the project may still allocate: the Manila
// gigabytes quota minus use and reservations, capped by the shares quota
// (no shares left is no capacity). Quotas are per project, so every
// topology segment gets the same figure; unlimited is the largest int64.
func (cs *ControllerServer) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	if _, err := params.ParseVolume(req.GetParameters()); err != nil {
		return nil, errInvalid("StorageClass parameters: %v", err)
	}
	if caps := req.GetVolumeCapabilities(); len(caps) > 0 && checkCaps(caps) != "" {
		return &csi.GetCapacityResponse{}, nil // none for a shape we cannot serve
	}
	c, err := cs.cloudFor(ctx, nil)
	if err != nil {
		return nil, err
	}
	q, err := c.GetShareQuota(ctx)
	if err != nil {
		return nil, StatusFromError(err, "reading the Manila quota")
	}
	free := freeBytes(q.Gigabytes)
	if q.Shares.Limit >= 0 && q.Shares.Limit-q.Shares.InUse-q.Shares.Reserved <= 0 {
		free = 0
	}
	return &csi.GetCapacityResponse{AvailableCapacity: free}, nil
}

func freeBytes(u openstack.QuotaUsage) int64 {
	if u.Limit < 0 {
		return math.MaxInt64
	}
	free := int64(u.Limit - u.InUse - u.Reserved)
	if free < 0 {
		return 0
	}
	return free * gib
}

// ValidateVolumeCapabilities confirms file system access in any of the
// five access modes; block and other file system types are not confirmed.
func (cs *ControllerServer) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, errInvalid("volume_id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, errInvalid("volume_capabilities are required")
	}
	if _, err := params.ParseVolumeContext(req.GetVolumeContext()); err != nil {
		return nil, errInvalid("volume context: %v", err)
	}
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if _, err := c.GetShare(ctx, id); openstack.IsNotFound(err) {
		return nil, errNotFound("volume %s not found", id)
	} else if err != nil {
		return nil, StatusFromError(err, "looking up share %s", id)
	}
	if problem := checkCaps(req.GetVolumeCapabilities()); problem != "" {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: problem}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}
