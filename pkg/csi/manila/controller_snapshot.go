package manila

import (
	"context"
	"errors"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// CreateSnapshot takes a share snapshot, keyed by the request name. It
// waits up to SnapshotReadyWait for `available` and otherwise answers
// ReadyToUse=false, so the snapshotter polls. A snapshot in error is
// deleted and the RPC fails with Manila's reason.
func (cs *ControllerServer) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name, source := req.GetName(), req.GetSourceVolumeId()
	if name == "" {
		return nil, errInvalid("snapshot name is required")
	}
	if source == "" {
		return nil, errInvalid("source_volume_id is required")
	}
	if _, err := params.ParseSnapshot(req.GetParameters()); err != nil {
		return nil, errInvalid("VolumeSnapshotClass parameters: %v", err)
	}
	release, ok := cs.inFlight.TryAcquire("snapshot-name:" + name)
	if !ok {
		return nil, errBusy("snapshot", name)
	}
	defer release()
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	snap, err := cs.findOrTakeSnapshot(ctx, c, name, source)
	if err != nil {
		return nil, err
	}
	if snap.Status != openstack.ShareSnapshotAvailable {
		if snap, err = cs.waitSnapshotBriefly(ctx, c, snap); err != nil {
			return nil, err
		}
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}

func (cs *ControllerServer) findOrTakeSnapshot(ctx context.Context, c openstack.ShareCloud, name, source string) (*openstack.ShareSnapshot, error) {
	found, err := c.FindShareSnapshotsByName(ctx, name)
	if err != nil {
		return nil, StatusFromError(err, "looking up snapshot %q", name)
	}
	for i := range found {
		if found[i].ShareID == source {
			return &found[i], nil
		}
	}
	if len(found) > 0 {
		return nil, errAlreadyExists("snapshot %q exists (%s) of another volume (%s)", name, found[0].ID, found[0].ShareID)
	}
	share, err := c.GetShare(ctx, source)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("source volume %s not found", source)
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up source volume %s", source)
	}
	if share.Status != openstack.ShareAvailable {
		return nil, errNotReady("source volume %s is %s, not available", share.ID, share.Status)
	}
	opts := openstack.CreateShareSnapshotOpts{Name: name, Description: "Created by the Manila CSI driver", ShareID: source}
	if f, err := c.ShareFeatures(ctx); err == nil && f.SnapshotMetadata {
		opts.Metadata = cs.ownerMeta()
	}
	snap, err := c.CreateShareSnapshot(ctx, opts)
	if err != nil {
		return nil, StatusFromError(err, "taking snapshot %q of volume %s", name, source)
	}
	klog.InfoS("Took share snapshot", "snapshotName", name, "snapshotID", snap.ID, "shareID", source)
	return snap, nil
}

// waitSnapshotBriefly waits up to SnapshotReadyWait (within the request's
// deadline) for the snapshot to leave `creating`.
func (cs *ControllerServer) waitSnapshotBriefly(ctx context.Context, c openstack.ShareCloud, snap *openstack.ShareSnapshot) (*openstack.ShareSnapshot, error) {
	wctx, cancel := context.WithTimeout(ctx, cs.opts.SnapshotReadyWait)
	defer cancel()
	got, err := c.WaitShareSnapshot(wctx, snap.ID, func(s *openstack.ShareSnapshot) bool { return s.Status != openstack.ShareSnapshotCreating })
	if reason, failed := errorStateReason(err); failed {
		if derr := c.DeleteShareSnapshot(ctx, snap.ID); derr != nil && !openstack.IsNotFound(derr) {
			klog.ErrorS(derr, "Deleting a failed snapshot", "snapshotID", snap.ID)
		}
		return nil, errFailedState(reason, "snapshot %s went to error and was deleted", snap.ID)
	}
	if err != nil && (openstack.KindOf(err) == openstack.KindTimeout || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() == nil {
		return snap, nil // not ready yet; the snapshotter polls
	}
	if err != nil {
		return nil, StatusFromError(err, "waiting for snapshot %s", snap.ID)
	}
	if got.Status == openstack.ShareSnapshotError {
		return nil, errFailedState(latestReason(ctx, c, got.ID), "snapshot %s went to error", got.ID)
	}
	return got, nil
}

// DeleteSnapshot deletes a share snapshot and waits until it is gone. A
// snapshot already gone is success.
func (cs *ControllerServer) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, errInvalid("snapshot_id is required")
	}
	release, ok := cs.inFlight.TryAcquire("snapshot-id:" + id)
	if !ok {
		return nil, errBusy("snapshot", id)
	}
	defer release()
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	snap, err := c.GetShareSnapshot(ctx, id)
	if openstack.IsNotFound(err) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up snapshot %s", id)
	}
	if snap.Status != openstack.ShareSnapshotDeleting {
		if err := c.DeleteShareSnapshot(ctx, id); err != nil && !openstack.IsNotFound(err) {
			return nil, StatusFromError(needsUser(err), "deleting snapshot %s", id)
		}
	}
	if err := c.WaitShareSnapshotGone(ctx, id); err != nil && !openstack.IsNotFound(err) {
		return nil, StatusFromError(err, "waiting for snapshot %s to be deleted", id)
	}
	klog.InfoS("Deleted share snapshot", "snapshotID", id)
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots lists share snapshots: one by snapshot_id (GetSnapshot's
// path), those of one source volume, or all, paged by Manila's marker.
// An unknown id gives an empty list, an unusable token Aborted.
func (cs *ControllerServer) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, errInvalid("max_entries must not be negative")
	}
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if id := req.GetSnapshotId(); id != "" {
		snap, err := c.GetShareSnapshot(ctx, id)
		if openstack.IsNotFound(err) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		if err != nil {
			return nil, StatusFromError(err, "looking up snapshot %s", id)
		}
		if src := req.GetSourceVolumeId(); src != "" && snap.ShareID != src {
			return &csi.ListSnapshotsResponse{}, nil
		}
		return &csi.ListSnapshotsResponse{Entries: []*csi.ListSnapshotsResponse_Entry{{Snapshot: csiSnapshot(snap)}}}, nil
	}
	page, err := c.ListShareSnapshots(ctx, openstack.ShareListOpts{
		ShareID: req.GetSourceVolumeId(), Limit: int(req.GetMaxEntries()), Marker: req.GetStartingToken(),
	})
	if err != nil {
		if req.GetStartingToken() != "" && (openstack.IsNotFound(err) || openstack.KindOf(err) == openstack.KindBadRequest) {
			return nil, errInProgress("starting_token %q is no longer valid: %v", req.GetStartingToken(), err)
		}
		return nil, StatusFromError(err, "listing snapshots")
	}
	resp := &csi.ListSnapshotsResponse{NextToken: page.NextMarker}
	for i := range page.Items {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(&page.Items[i])})
	}
	return resp, nil
}

// GetSnapshot returns one share snapshot; an unknown id is NotFound.
func (cs *ControllerServer) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, errInvalid("snapshot_id is required")
	}
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	snap, err := c.GetShareSnapshot(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("snapshot %s not found", id)
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up snapshot %s", id)
	}
	return &csi.GetSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}

func csiSnapshot(s *openstack.ShareSnapshot) *csi.Snapshot {
	out := &csi.Snapshot{
		SnapshotId:     s.ID,
		SourceVolumeId: s.ShareID,
		SizeBytes:      int64(s.SizeGiB) * gib,
		ReadyToUse:     s.Status == openstack.ShareSnapshotAvailable,
	}
	created := s.CreatedAt
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	out.CreationTime = timestamppb.New(created)
	return out
}
