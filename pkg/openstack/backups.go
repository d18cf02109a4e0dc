package openstack

import (
	"context"
	"net/http"
)

// CreateBackup creates a backup. Metadata needs Cinder 3.43 and an
// availability zone 3.51; below those the call fails with KindConflict
// rather than silently dropping the ownership metadata the driver relies
// on.
func (c *cloud) CreateBackup(ctx context.Context, o CreateBackupOpts) (*Backup, error) {
	const op = "backup_create"
	if err := checkID(op, o.VolumeID); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Features().checkBackupOpts(op, o); err != nil {
		return nil, err
	}
	out := oneBody[wireBackup]{key: backupAPI.key}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL(backupAPI.path), body: map[string]any{backupAPI.key: backupBody(o)}, out: &out, ok: []int{200, 202}}
	var adopted *Backup
	if o.Name != "" {
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindBackupsByName(ctx, o.Name)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "backups", func(b *Backup) bool {
				return b.VolumeID == o.VolumeID && matchesMeta(b.Metadata, o.Metadata)
			})
			return adopted != nil, err
		}
	}
	if err := do(ctx, sc, r); err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	return createdBackup(out.item.toBackup(), o), nil
}

// checkBackupOpts refuses what the cloud's microversion cannot carry,
// rather than silently dropping it.
func (f Features) checkBackupOpts(op string, o CreateBackupOpts) error {
	if len(o.Metadata) > 0 && !f.BackupMetadata {
		return &Error{Kind: KindConflict, Op: op, Resource: o.Name,
			Message: "backup metadata needs Cinder microversion " + mvBackupMetadata + "; this cloud offers " + f.CinderMicroversion}
	}
	if o.AvailabilityZone != "" && !f.backupAZSupported() {
		return &Error{Kind: KindConflict, Op: op, Resource: o.Name,
			Message: "a backup availability zone needs Cinder microversion " + mvBackupAZ + "; this cloud offers " + f.CinderMicroversion}
	}
	return nil
}

// backupBody is the create request's backup object: only the options set.
func backupBody(o CreateBackupOpts) map[string]any {
	b := map[string]any{"volume_id": o.VolumeID}
	set := func(k, v string) {
		if v != "" {
			b[k] = v
		}
	}
	set("name", o.Name)
	set("description", o.Description)
	set("snapshot_id", o.SnapshotID)
	set("availability_zone", o.AvailabilityZone)
	if o.Force {
		b["force"] = true
	}
	if o.Incremental {
		b["incremental"] = true
	}
	if len(o.Metadata) > 0 {
		b["metadata"] = o.Metadata
	}
	return b
}

// createdBackup fills what the create answer leaves out (it holds only id,
// name and links) from the request.
func createdBackup(bk Backup, o CreateBackupOpts) *Backup {
	if bk.Name == "" {
		bk.Name = o.Name
	}
	if bk.VolumeID == "" {
		bk.VolumeID = o.VolumeID
	}
	if bk.SnapshotID == "" {
		bk.SnapshotID = o.SnapshotID
	}
	if bk.Status == "" {
		bk.Status = BackupCreating
	}
	if bk.Metadata == nil && len(o.Metadata) > 0 {
		bk.Metadata = o.Metadata
	}
	return &bk
}

func (c *cloud) GetBackup(ctx context.Context, id string) (*Backup, error) {
	return getByID(ctx, c, backupAPI, "backup_get", id)
}

func (c *cloud) fetchBackup(ctx context.Context, id string) (Backup, error) {
	return value(getByID(ctx, c, backupAPI, "backup_poll", id))
}

func (c *cloud) FindBackupsByName(ctx context.Context, name string) ([]Backup, error) {
	return findByName(ctx, c, backupAPI, "backup_find", name, nil)
}

func (c *cloud) ListBackups(ctx context.Context, o ListOpts) (Page[Backup], error) {
	return listMatching(ctx, c, backupAPI, "backup_list", o)
}

func (c *cloud) DeleteBackup(ctx context.Context, id string) error {
	return deleteByID(ctx, c, backupAPI.path, "backup_delete", id)
}
