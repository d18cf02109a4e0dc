package cinder

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Paging tokens. ListVolumes walks every configured cloud in Names() order;
// its token names the cloud and Cinder's marker inside it. ListSnapshots
// walks snapshots, then backups, of one cloud. Tokens are opaque to the CO
// but readable in logs: "v1:<base64url cloud>:<marker>" and
// "s:<marker>" / "b:<marker>".
const (
	volumeTokenPrefix   = "v1:"
	snapshotTokenPrefix = "s:"
	backupTokenPrefix   = "b:"
)

func encodeVolumeToken(cloud, marker string) string {
	return volumeTokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(cloud)) + ":" + marker
}

func decodeVolumeToken(tok string) (cloud, marker string, ok bool) {
	rest, found := strings.CutPrefix(tok, volumeTokenPrefix)
	if !found {
		return "", "", false
	}
	enc, marker, found := strings.Cut(rest, ":")
	if !found {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	return string(raw), marker, true
}

// ListVolumes lists volumes across all configured clouds. max_entries 0
// means everything; a page larger than Cinder's own page limit (1000 by
// default) is filled from several Cinder pages. A token we did not issue is
// Aborted, as the spec asks.
func (cs *ControllerServer) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, errInvalid("max_entries must not be negative")
	}
	vols, next, err := cs.listVolumesRaw(ctx, int(req.GetMaxEntries()), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next, Entries: make([]*csi.ListVolumesResponse_Entry, 0, len(vols))}
	for i := range vols {
		resp.Entries = append(resp.Entries, volumeListEntry(&vols[i]))
	}
	return resp, nil
}

// listVolumesRaw returns up to maxEntries volumes (0: all) from the token on, and
// the token of the rest ("" at the end).
func (cs *ControllerServer) listVolumesRaw(ctx context.Context, maxEntries int, token string) ([]openstack.Volume, string, error) {
	names := cs.clouds.Names()
	cloudIdx, marker := 0, ""
	if token != "" {
		cloud, m, ok := decodeVolumeToken(token)
		idx := indexOf(names, cloud)
		if !ok || idx < 0 {
			return nil, "", errInProgress("starting_token %q is not one this driver issued, or names a cloud no longer configured", token)
		}
		cloudIdx, marker = idx, m
	}
	var vols []openstack.Volume
	for cloudIdx < len(names) {
		c, err := cs.clouds.Get(names[cloudIdx])
		if err != nil {
			return nil, "", StatusFromError(err, "cloud %q", names[cloudIdx])
		}
		limit := 0
		if maxEntries > 0 {
			limit = maxEntries - len(vols)
		}
		page, err := c.ListVolumes(ctx, openstack.ListOpts{Limit: limit, Marker: marker})
		if err != nil {
			if openstack.KindOf(err) == openstack.KindBadRequest && marker != "" {
				return nil, "", errInProgress("starting_token is no longer valid (the marker volume may be gone): %v", err)
			}
			return nil, "", StatusFromError(err, "listing volumes of cloud %q", names[cloudIdx])
		}
		vols = append(vols, page.Items...)
		marker = page.NextMarker
		if marker == "" {
			cloudIdx++
		}
		if maxEntries > 0 && len(vols) >= maxEntries {
			break
		}
	}
	if cloudIdx < len(names) {
		return vols, encodeVolumeToken(names[cloudIdx], marker), nil
	}
	return vols, "", nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func volumeListEntry(v *openstack.Volume) *csi.ListVolumesResponse_Entry {
	return &csi.ListVolumesResponse_Entry{
		Volume: &csi.Volume{VolumeId: v.ID, CapacityBytes: gibBytes(int64(v.SizeGiB))},
		Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: publishedNodes(v)},
	}
}

// ControllerGetVolume returns a volume with the nodes it is published on.
// The request has no secrets, so every configured cloud is asked.
func (cs *ControllerServer) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := checkID("volume", id); err != nil {
		return nil, err
	}
	_, v, err := cs.findVolumeAnyCloud(ctx, id)
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeResponse{
		Volume: &csi.Volume{VolumeId: v.ID, CapacityBytes: gibBytes(int64(v.SizeGiB)), AccessibleTopology: cs.accessibleTopology(v, nil)},
		Status: &csi.ControllerGetVolumeResponse_VolumeStatus{PublishedNodeIds: publishedNodes(v)},
	}, nil
}

// ValidateVolumeCapabilities confirms the capabilities a volume can serve:
// block or mount access, single-node modes, and MULTI_NODE_* only for block
// access on a multiattach volume.
func (cs *ControllerServer) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if err := checkID("volume", id); err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, errInvalid("volume capabilities are required")
	}
	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	v, err := c.GetVolume(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("volume %s not found", id)
	}
	if err != nil {
		return nil, StatusFromError(err, "reading volume %s", id)
	}
	if problem := capsProblemWithVolume(req.GetVolumeCapabilities(), v); problem != "" {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: problem}, nil
	}
	if _, err := params.ParseVolume(req.GetParameters()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	if mp := req.GetMutableParameters(); len(mp) > 0 {
		if _, err := params.ParseMutable(mp); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: "VolumeAttributesClass parameters: " + err.Error()}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
		MutableParameters:  req.GetMutableParameters(),
	}}, nil
}

// ListSnapshots lists snapshots and backups of the cloud the secrets select:
// one by id, those of one source volume, or all, paged snapshots first.
// Entries still being made have ReadyToUse=false.
func (cs *ControllerServer) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, errInvalid("max_entries must not be negative")
	}
	if err := checkOptionalID("snapshot", req.GetSnapshotId()); err != nil {
		return nil, err
	}
	if err := checkOptionalID("source volume", req.GetSourceVolumeId()); err != nil {
		return nil, err
	}
	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if id := req.GetSnapshotId(); id != "" {
		e, err := cs.snapshotOrBackup(ctx, c, id)
		if err != nil {
			return nil, err
		}
		if e == nil || (req.GetSourceVolumeId() != "" && e.SourceVolumeId != req.GetSourceVolumeId()) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		return &csi.ListSnapshotsResponse{Entries: []*csi.ListSnapshotsResponse_Entry{{Snapshot: e}}}, nil
	}

	inBackups, marker, err := parseSnapshotToken(req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	maxEntries := int(req.GetMaxEntries())
	resp := &csi.ListSnapshotsResponse{}
	for {
		limit := 0
		if maxEntries > 0 {
			limit = maxEntries - len(resp.Entries)
		}
		opts := openstack.ListOpts{VolumeID: req.GetSourceVolumeId(), Limit: limit, Marker: marker}
		entries, next, err := listSnapshotPage(ctx, c, inBackups, opts)
		if err != nil {
			return nil, listSnapshotsError(err, marker)
		}
		resp.Entries = append(resp.Entries, entries...)
		marker = next
		if marker == "" {
			if inBackups {
				return resp, nil
			}
			inBackups = true
		}
		if maxEntries > 0 && len(resp.Entries) >= maxEntries {
			break
		}
	}
	prefix := snapshotTokenPrefix
	if inBackups {
		prefix = backupTokenPrefix
	}
	resp.NextToken = prefix + marker
	return resp, nil
}

// parseSnapshotToken reads a ListSnapshots starting token: which list
// (snapshots, then backups) and the marker in it.
func parseSnapshotToken(tok string) (inBackups bool, marker string, err error) {
	switch {
	case tok == "":
		return false, "", nil
	case strings.HasPrefix(tok, snapshotTokenPrefix):
		return false, strings.TrimPrefix(tok, snapshotTokenPrefix), nil
	case strings.HasPrefix(tok, backupTokenPrefix):
		return true, strings.TrimPrefix(tok, backupTokenPrefix), nil
	}
	return false, "", errInProgress("starting_token %q is not one this driver issued", tok)
}

// listSnapshotPage lists one page of snapshots, or of backups, as entries
// (those being deleted left out) and the marker of the next page.
func listSnapshotPage(ctx context.Context, c openstack.Cloud, inBackups bool, opts openstack.ListOpts) ([]*csi.ListSnapshotsResponse_Entry, string, error) {
	var entries []*csi.ListSnapshotsResponse_Entry
	if inBackups {
		page, err := c.ListBackups(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		for i := range page.Items {
			if b := &page.Items[i]; !deletingStatus(b.Status) {
				entries = append(entries, &csi.ListSnapshotsResponse_Entry{Snapshot: backupEntry(b)})
			}
		}
		return entries, page.NextMarker, nil
	}
	page, err := c.ListSnapshots(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	for i := range page.Items {
		if s := &page.Items[i]; !deletingStatus(s.Status) {
			entries = append(entries, &csi.ListSnapshotsResponse_Entry{Snapshot: snapshotEntry(s)})
		}
	}
	return entries, page.NextMarker, nil
}

func listSnapshotsError(err error, marker string) error {
	if openstack.KindOf(err) == openstack.KindBadRequest && marker != "" {
		return errInProgress("starting_token is no longer valid (the marker may be gone): %v", err)
	}
	return StatusFromError(err, "listing snapshots")
}

// deletingStatus reports a snapshot or backup Cinder is deleting or failed
// to delete: ListSnapshots leaves those out.
func deletingStatus(s string) bool {
	return s == openstack.SnapshotDeleting || s == openstack.SnapshotErrorDeleting || // snapshots
		s == openstack.BackupDeleting || s == openstack.BackupErrorDeleting // backups (the same words today)
}
