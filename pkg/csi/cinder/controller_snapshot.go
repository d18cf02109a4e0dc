package cinder

import (
	"context"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// backupBaseDuration is added to the per-GiB budget of a backup, as the
// reference plugin does, for the fixed cost of starting one.
const backupBaseDuration = 30 * time.Second

// snapshotDescription marks snapshots and backups we create.
const snapshotDescription = "Created by OpenStack Cinder CSI driver"

// CreateSnapshot takes a Cinder snapshot, or a backup when the class says
// type=backup. It waits at most SnapshotReadyWait and otherwise answers
// ReadyToUse=false; the snapshotter polls (CreateSnapshot again, or
// ListSnapshots by id) until it is true.
//
// Idempotency key: the name (plus our cluster metadata when --cluster is
// set). The same name for another source volume is AlreadyExists.
func (cs *ControllerServer) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name, srcID := req.GetName(), req.GetSourceVolumeId()
	if name == "" {
		return nil, errInvalid("snapshot name is required")
	}
	if err := checkID("source volume", srcID); err != nil {
		return nil, err
	}
	sp, err := params.ParseSnapshot(req.GetParameters())
	if err != nil {
		return nil, errInvalid("VolumeSnapshotClass parameters: %v", err)
	}
	release, ok := cs.inFlight.TryAcquire("snapshot-name/" + name)
	if !ok {
		return nil, errBusy("snapshot", name)
	}
	defer release()
	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if sp.Backup {
		return cs.createBackup(ctx, c, name, srcID, sp)
	}
	snap, created, err := cs.findOrCreateSnapshot(ctx, c, name, srcID, sp)
	if err != nil {
		return nil, err
	}
	if snap, err = cs.briefWaitSnapshot(ctx, c, snap); err != nil {
		return nil, err
	}
	if snap.Status == openstack.SnapshotError {
		return nil, cs.failedSnapshot(ctx, c, snap, created)
	}
	return &csi.CreateSnapshotResponse{Snapshot: snapshotEntry(snap)}, nil
}

// findOrCreateSnapshot returns the snapshot named name of srcID, creating
// it when there is none; created says which.
func (cs *ControllerServer) findOrCreateSnapshot(ctx context.Context, c openstack.Cloud, name, srcID string, sp *params.Snapshot) (*openstack.Snapshot, bool, error) {
	found, err := cs.findOwnSnapshots(ctx, c, name)
	if err != nil {
		return nil, false, err
	}
	switch len(found) {
	case 0:
	case 1:
		if found[0].VolumeID != srcID {
			return nil, false, errAlreadyExists("snapshot %q already exists as %s of volume %s, not of volume %s", name, found[0].ID, found[0].VolumeID, srcID)
		}
		return &found[0], false, nil
	default:
		return nil, false, errPrecondition("%d Cinder snapshots are named %q; delete all but one", len(found), name)
	}
	snap, err := c.CreateSnapshot(ctx, openstack.CreateSnapshotOpts{
		Name:        name,
		Description: snapshotDescription,
		VolumeID:    srcID,
		Force:       sp.Force,
		Metadata:    cs.snapshotMetadata(sp),
	})
	if err != nil {
		if openstack.IsNotFound(err) {
			return nil, false, errNotFound("source volume %s not found", srcID)
		}
		if openstack.KindOf(err) == openstack.KindConflict && !sp.Force {
			return nil, false, errPrecondition("creating snapshot %q: %v; set force-create: \"true\" in the VolumeSnapshotClass to snapshot an attached volume", name, err)
		}
		if retryable(err) && ctx.Err() == nil {
			// The answer was lost, not necessarily the snapshot.
			if again, ferr := cs.findOwnSnapshots(ctx, c, name); ferr == nil && len(again) == 1 && again[0].VolumeID == srcID {
				return &again[0], true, nil
			}
		}
		return nil, false, StatusFromError(err, "creating snapshot %q of volume %s", name, srcID)
	}
	klog.FromContext(ctx).Info("Created snapshot", "snapshotID", snap.ID, "volumeID", srcID, "name", name)
	return snap, true, nil
}

// findOwnSnapshots lists snapshots by name, keeping ours when a cluster is set.
func (cs *ControllerServer) findOwnSnapshots(ctx context.Context, c openstack.Cloud, name string) ([]openstack.Snapshot, error) {
	all, err := c.FindSnapshotsByName(ctx, name)
	if err != nil {
		return nil, StatusFromError(err, "looking up snapshot %q", name)
	}
	if cs.opts.Cluster == "" {
		return all, nil
	}
	var own []openstack.Snapshot
	for _, s := range all {
		if s.Metadata[openstack.MetaCluster] == cs.opts.Cluster {
			own = append(own, s)
		}
	}
	return own, nil
}

// retryable reports cloud errors after which the request may or may not
// have taken effect.
func retryable(err error) bool {
	switch openstack.KindOf(err) {
	case openstack.KindUnavailable, openstack.KindRateLimited, openstack.KindUnknown:
		return true
	}
	return false
}

// briefWaitSnapshot gives Cinder SnapshotReadyWait to finish. Running out of
// it is not an error: the snapshot is reported not ready yet.
func (cs *ControllerServer) briefWaitSnapshot(ctx context.Context, c openstack.Cloud, snap *openstack.Snapshot) (*openstack.Snapshot, error) {
	if snap.Status != openstack.SnapshotCreating || cs.opts.SnapshotReadyWait <= 0 {
		return snap, nil
	}
	wctx, cancel := context.WithTimeout(ctx, cs.opts.SnapshotReadyWait)
	defer cancel()
	last, err := c.WaitSnapshot(wctx, snap.ID, func(s *openstack.Snapshot) bool { return s.Status != openstack.SnapshotCreating })
	if last == nil {
		last = snap
	}
	if err != nil && openstack.KindOf(err) != openstack.KindTimeout && openstack.KindOf(err) != openstack.KindErrorState && wctx.Err() == nil {
		return nil, StatusFromError(err, "waiting for snapshot %s", snap.ID)
	}
	return last, nil
}

// failedSnapshot reports a snapshot in error, deleting it when this call
// created it.
func (cs *ControllerServer) failedSnapshot(ctx context.Context, c openstack.Cloud, snap *openstack.Snapshot, created bool) error {
	reason := latestReason(ctx, c, snap.ID)
	if !created {
		return errPrecondition("snapshot %s named %q is in status error%s; delete the VolumeSnapshot and create it again", snap.ID, snap.Name, reasonSuffix(reason))
	}
	if err := c.DeleteSnapshot(ctx, snap.ID); err != nil && !openstack.IsNotFound(err) {
		return errFailedState(reason, "snapshot %s went to error and deleting it failed (%v); delete it by hand", snap.ID, err)
	}
	return errFailedState(reason, "Cinder put snapshot %s in status error; it was deleted", snap.ID)
}

func (cs *ControllerServer) snapshotMetadata(sp *params.Snapshot) map[string]string {
	m := map[string]string{}
	if cs.opts.Cluster != "" {
		m[openstack.MetaCluster] = cs.opts.Cluster
	}
	if cs.opts.CopyCreateMetadata {
		for k, v := range map[string]string{metaSnapshotName: sp.SnapshotName, metaSnapshotNamespace: sp.SnapshotNamespace, metaSnapshotContentName: sp.SnapshotContentName} {
			if v != "" {
				m[k] = v
			}
		}
	}
	return m
}

// createBackup makes a backup through an intermediate snapshot named like
// the backup: snapshot, wait until it is available (Aborted until then),
// back it up, and delete the snapshot once the backup is available.
func (cs *ControllerServer) createBackup(ctx context.Context, c openstack.Cloud, name, srcID string, sp *params.Snapshot) (*csi.CreateSnapshotResponse, error) {
	backups, err := c.FindBackupsByName(ctx, name)
	if err != nil {
		return nil, StatusFromError(err, "looking up backup %q", name)
	}
	backups = cs.ownBackups(backups)
	switch len(backups) {
	case 0:
	case 1:
		b := &backups[0]
		if b.VolumeID != "" && b.VolumeID != srcID {
			return nil, errAlreadyExists("backup %q already exists as %s of volume %s, not of volume %s", name, b.ID, b.VolumeID, srcID)
		}
		return cs.backupProgress(ctx, c, b, sp, false)
	default:
		return nil, errPrecondition("%d Cinder backups are named %q; delete all but one", len(backups), name)
	}

	snap, _, err := cs.findOrCreateSnapshot(ctx, c, name, srcID, &params.Snapshot{Force: true, SnapshotName: sp.SnapshotName, SnapshotNamespace: sp.SnapshotNamespace, SnapshotContentName: sp.SnapshotContentName})
	if err != nil {
		return nil, err
	}
	if snap, err = cs.briefWaitSnapshot(ctx, c, snap); err != nil {
		return nil, err
	}
	switch snap.Status {
	case openstack.SnapshotAvailable:
	case openstack.SnapshotError:
		// The intermediate snapshot is always ours to remove.
		return nil, cs.failedSnapshot(ctx, c, snap, true)
	default:
		return nil, errInProgress("the intermediate snapshot %s for backup %q is still %s", snap.ID, name, snap.Status)
	}
	opts := openstack.CreateBackupOpts{
		Name:             name,
		Description:      snapshotDescription,
		VolumeID:         srcID,
		SnapshotID:       snap.ID,
		AvailabilityZone: sp.Availability,
		Force:            true,
	}
	if c.Features().BackupMetadata {
		opts.Metadata = cs.snapshotMetadata(sp)
	}
	b, err := c.CreateBackup(ctx, opts)
	if err != nil {
		if retryable(err) && ctx.Err() == nil {
			if again, ferr := c.FindBackupsByName(ctx, name); ferr == nil {
				if own := cs.ownBackups(again); len(own) == 1 {
					return cs.backupProgress(ctx, c, &own[0], sp, true)
				}
			}
		}
		return nil, StatusFromError(err, "creating backup %q of volume %s", name, srcID)
	}
	klog.FromContext(ctx).Info("Created backup", "backupID", b.ID, "volumeID", srcID, "snapshotID", snap.ID, "name", name)
	return cs.backupProgress(ctx, c, b, sp, true)
}

// ownBackups keeps backups with our cluster metadata when a cluster is set
// and the cloud stores backup metadata.
func (cs *ControllerServer) ownBackups(all []openstack.Backup) []openstack.Backup {
	if cs.opts.Cluster == "" {
		return all
	}
	var own []openstack.Backup
	for _, b := range all {
		if v, ok := b.Metadata[openstack.MetaCluster]; !ok || v == cs.opts.Cluster {
			own = append(own, b)
		}
	}
	return own
}

// backupProgress answers CreateSnapshot for an existing backup.
func (cs *ControllerServer) backupProgress(ctx context.Context, c openstack.Cloud, b *openstack.Backup, sp *params.Snapshot, created bool) (*csi.CreateSnapshotResponse, error) {
	if b.Status == openstack.BackupCreating && cs.opts.SnapshotReadyWait > 0 {
		wctx, cancel := context.WithTimeout(ctx, cs.opts.SnapshotReadyWait)
		last, err := c.WaitBackup(wctx, b.ID, func(x *openstack.Backup) bool { return x.Status != openstack.BackupCreating })
		cancel()
		if last != nil {
			b = last
		}
		if err != nil && openstack.KindOf(err) != openstack.KindTimeout && openstack.KindOf(err) != openstack.KindErrorState && wctx.Err() == nil {
			return nil, StatusFromError(err, "waiting for backup %s", b.ID)
		}
	}
	switch b.Status {
	case openstack.BackupAvailable:
		cs.cleanupIntermediateSnapshot(ctx, c, b)
	case openstack.BackupError:
		if !created {
			return nil, errPrecondition("backup %s named %q is in status error%s; delete the VolumeSnapshot and create it again", b.ID, b.Name, reasonSuffix(b.FailReason))
		}
		if err := c.DeleteBackup(ctx, b.ID); err == nil || openstack.IsNotFound(err) {
			cs.cleanupIntermediateSnapshot(ctx, c, b)
		}
		return nil, errFailedState(b.FailReason, "backup %s went to error and was deleted", b.ID)
	case openstack.BackupCreating:
		budget := backupBaseDuration + time.Duration(b.SizeGiB)*sp.BackupMaxDurationPerGiB
		if !b.CreatedAt.IsZero() && time.Since(b.CreatedAt) > budget {
			return nil, errTooSlow("backup %s has been creating for %v, more than the %v allowed by backup-max-duration-seconds-per-gb; check the cinder-backup service", b.ID, time.Since(b.CreatedAt).Round(time.Second), budget)
		}
	}
	return &csi.CreateSnapshotResponse{Snapshot: backupEntry(b)}, nil
}

// cleanupIntermediateSnapshot deletes the snapshot a finished backup was
// taken from, if it is ours (named like the backup). Failure only delays
// the cleanup to the next call that sees the backup available, or to
// DeleteSnapshot; it is logged, not returned.
func (cs *ControllerServer) cleanupIntermediateSnapshot(ctx context.Context, c openstack.Cloud, b *openstack.Backup) {
	var snaps []openstack.Snapshot
	if b.SnapshotID != "" {
		s, err := c.GetSnapshot(ctx, b.SnapshotID)
		if openstack.IsNotFound(err) {
			return
		}
		if err != nil {
			klog.FromContext(ctx).Error(err, "Reading the intermediate snapshot of a backup failed; will retry", "backupID", b.ID, "snapshotID", b.SnapshotID)
			return
		}
		snaps = []openstack.Snapshot{*s}
	} else {
		found, err := c.FindSnapshotsByName(ctx, b.Name)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Looking up the intermediate snapshot of a backup failed; will retry", "backupID", b.ID)
			return
		}
		snaps = found
	}
	for _, s := range snaps {
		if s.Name != b.Name || (b.VolumeID != "" && s.VolumeID != b.VolumeID) {
			continue
		}
		if err := c.DeleteSnapshot(ctx, s.ID); err != nil && !openstack.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Deleting the intermediate snapshot of a backup failed; will retry", "backupID", b.ID, "snapshotID", s.ID)
			continue
		}
		klog.FromContext(ctx).Info("Deleted the intermediate snapshot of a backup", "backupID", b.ID, "snapshotID", s.ID)
	}
}

func snapshotEntry(s *openstack.Snapshot) *csi.Snapshot {
	e := csiSnapshot(s.ID, s.VolumeID, s.SizeGiB, s.Status == openstack.SnapshotAvailable, s.CreatedAt)
	// A member of a group snapshot cannot be deleted on its own in Cinder;
	// the spec then requires its group snapshot id (group_controller.go).
	e.GroupSnapshotId = s.GroupSnapshotID
	return e
}

func backupEntry(b *openstack.Backup) *csi.Snapshot {
	return csiSnapshot(b.ID, b.VolumeID, b.SizeGiB, b.Status == openstack.BackupAvailable, b.CreatedAt)
}

// csiSnapshot is the CSI view of a Cinder snapshot or backup.
func csiSnapshot(id, volumeID string, sizeGiB int, ready bool, created time.Time) *csi.Snapshot {
	e := &csi.Snapshot{
		SnapshotId:     id,
		SourceVolumeId: volumeID,
		SizeBytes:      gibBytes(int64(sizeGiB)),
		ReadyToUse:     ready,
	}
	if !created.IsZero() {
		e.CreationTime = timestamppb.New(created)
	}
	return e
}

// DeleteSnapshot deletes a snapshot or a backup. The snapshot DELETE goes
// first (most ids are snapshots): Cinder refuses a snapshot it cannot
// delete now (creating, deleting, a group member) and changes nothing then,
// so the snapshot is read only to explain a refusal and the happy path
// costs no GET. A 404 sends the id on to the backups; not found as either
// is success.
func (cs *ControllerServer) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if err := checkID("snapshot", id); err != nil {
		return nil, err
	}
	release, ok := cs.inFlight.TryAcquire("snapshot/" + id)
	if !ok {
		return nil, errBusy("snapshot", id)
	}
	defer release()
	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	err = c.DeleteSnapshot(ctx, id)
	switch {
	case err == nil:
		// No GET on this path, so the source volume is not known and
		// the "Deleted snapshot" log line names only the snapshot.
		return cs.waitSnapshotDeleted(ctx, c, id, "")
	case openstack.IsNotFound(err):
		return cs.deleteBackup(ctx, c, id)
	case openstack.KindOf(err) == openstack.KindConflict:
		return cs.snapshotDeleteRefused(ctx, c, id, err)
	}
	return nil, StatusFromError(err, "deleting snapshot %s", id)
}

// deleteBackup deletes the backup id, after the snapshot DELETE found no
// snapshot of that id, and then the backup's intermediate snapshot if it
// is still there. No backup of that id either is success.
func (cs *ControllerServer) deleteBackup(ctx context.Context, c openstack.Cloud, id string) (*csi.DeleteSnapshotResponse, error) {
	b, err := c.GetBackup(ctx, id)
	if openstack.IsNotFound(err) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "reading backup %s", id)
	}
	if b.Status != openstack.BackupDeleting {
		if err := c.DeleteBackup(ctx, id); err != nil && !openstack.IsNotFound(err) {
			return nil, StatusFromError(err, "deleting backup %s", id)
		}
	}
	cs.cleanupIntermediateSnapshot(ctx, c, b)
	klog.FromContext(ctx).Info("Deleted backup", "backupID", id, "volumeID", b.VolumeID)
	return &csi.DeleteSnapshotResponse{}, nil
}

// snapshotDeleteRefused reads a snapshot whose DELETE Cinder refused. Gone
// since is success; one being deleted is waited for; one still `creating`
// (CreateSnapshot answered ReadyToUse=false) is waited for until made,
// then deleted; anything else (a group member, error_deleting) needs the
// user: FailedPrecondition with Cinder's message.
func (cs *ControllerServer) snapshotDeleteRefused(ctx context.Context, c openstack.Cloud, id string, refusal error) (*csi.DeleteSnapshotResponse, error) {
	snap, err := c.GetSnapshot(ctx, id)
	switch {
	case openstack.IsNotFound(err):
		return &csi.DeleteSnapshotResponse{}, nil
	case err != nil:
		return nil, StatusFromError(err, "reading snapshot %s", id)
	case snap.Status == openstack.SnapshotDeleting:
		return cs.waitSnapshotDeleted(ctx, c, id, snap.VolumeID)
	case snap.Status != openstack.SnapshotCreating:
		return nil, StatusFromError(needsUser(refusal), "deleting snapshot %s", id)
	}
	made, err := cs.waitSnapshotMade(ctx, c, id)
	if openstack.IsNotFound(err) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if made.Status != openstack.SnapshotDeleting {
		if err := c.DeleteSnapshot(ctx, id); err != nil && !openstack.IsNotFound(err) {
			return nil, StatusFromError(needsUser(err), "deleting snapshot %s", id)
		}
	}
	return cs.waitSnapshotDeleted(ctx, c, id, made.VolumeID)
}

// waitSnapshotDeleted waits within the request until Cinder has removed a
// snapshot it is deleting (~0.5 s on real Cinder with Ceph RBD,
// openstack-rig): until then the snapshot still blocks the DeleteVolume of
// its source that often follows (csi-sanity's cleanup, namespace
// teardown). volumeID is only for the log, empty when not read.
func (cs *ControllerServer) waitSnapshotDeleted(ctx context.Context, c openstack.Cloud, id, volumeID string) (*csi.DeleteSnapshotResponse, error) {
	if _, err := c.WaitSnapshot(ctx, id, func(*openstack.Snapshot) bool { return false }); err != nil && !openstack.IsNotFound(err) {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return nil, errInProgress("snapshot %s is still being deleted", id)
		}
		return nil, StatusFromError(err, "waiting for snapshot %s to be deleted", id)
	}
	kv := []any{"snapshotID", id}
	if volumeID != "" {
		kv = append(kv, "volumeID", volumeID)
	}
	klog.FromContext(ctx).Info("Deleted snapshot", kv...)
	return &csi.DeleteSnapshotResponse{}, nil
}

// waitSnapshotMade waits within the request until a snapshot Cinder is
// still making is available or in error: Cinder refuses to delete a
// `creating` snapshot (400 "must be available or error"), and
// CreateSnapshot answers ReadyToUse=false after SnapshotReadyWait, so a
// DeleteSnapshot right after it (csi-sanity's cleanup, a user deleting a
// fresh VolumeSnapshot) finds one: on the rig under load a snapshot took
// 12 s (2026-12-02). At the deadline Aborted, and the retry deletes it.
func (cs *ControllerServer) waitSnapshotMade(ctx context.Context, c openstack.Cloud, id string) (*openstack.Snapshot, error) {
	snap, err := c.WaitSnapshot(ctx, id, func(s *openstack.Snapshot) bool { return s.Status != openstack.SnapshotCreating })
	switch {
	case err == nil || openstack.IsNotFound(err):
		return snap, err
	case openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil:
		return nil, errInProgress("snapshot %s is still being created; it is deleted once Cinder has made it", id)
	default:
		return nil, StatusFromError(err, "waiting for snapshot %s to be made before deleting it", id)
	}
}

// GetSnapshot returns one snapshot or backup by id (NotFound when neither).
func (cs *ControllerServer) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if err := checkID("snapshot", id); err != nil {
		return nil, err
	}
	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	e, err := cs.snapshotOrBackup(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errNotFound("snapshot %s not found (neither a Cinder snapshot nor a backup)", id)
	}
	return &csi.GetSnapshotResponse{Snapshot: e}, nil
}

// snapshotOrBackup looks id up as a snapshot, then as a backup; nil, nil
// when it is neither. A backup seen available gets its intermediate
// snapshot cleaned up: the snapshotter polls here, so this is where a
// backup that finished after CreateSnapshot returned is noticed.
func (cs *ControllerServer) snapshotOrBackup(ctx context.Context, c openstack.Cloud, id string) (*csi.Snapshot, error) {
	snap, err := c.GetSnapshot(ctx, id)
	if err == nil {
		return snapshotEntry(snap), nil
	}
	if !openstack.IsNotFound(err) {
		return nil, StatusFromError(err, "reading snapshot %s", id)
	}
	b, err := c.GetBackup(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "reading backup %s", id)
	}
	if b.Status == openstack.BackupAvailable {
		cs.cleanupIntermediateSnapshot(ctx, c, b)
	}
	return backupEntry(b), nil
}
