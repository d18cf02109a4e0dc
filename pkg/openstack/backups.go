package openstack

import (
	"context"
	"errors"
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
	f := c.Features()
	if len(o.Metadata) > 0 && !f.BackupMetadata {
		return nil, &Error{Kind: KindConflict, Op: op, Resource: o.Name,
			Message: "backup metadata needs Cinder microversion " + mvBackupMetadata + "; this cloud offers " + f.CinderMicroversion}
	}
	if o.AvailabilityZone != "" && !f.backupAZSupported() {
		return nil, &Error{Kind: KindConflict, Op: op, Resource: o.Name,
			Message: "a backup availability zone needs Cinder microversion " + mvBackupAZ + "; this cloud offers " + f.CinderMicroversion}
	}
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
	var out struct {
		Backup wireBackup `json:"backup"`
	}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL("backups"), body: map[string]any{"backup": b}, out: &out, ok: []int{200, 202}}
	var adopted *Backup
	if o.Name != "" {
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindBackupsByName(ctx, o.Name)
			if err != nil {
				return false, err
			}
			for i := range found {
				if found[i].VolumeID == o.VolumeID && matchesMeta(found[i].Metadata, o.Metadata) {
					if adopted != nil {
						return false, errors.New("several backups match")
					}
					adopted = &found[i]
				}
			}
			return adopted != nil, nil
		}
	}
	if err := do(ctx, sc, r); err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	// The create answer holds only id, name and links.
	bk := out.Backup.toBackup()
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
	return &bk, nil
}

func (c *cloud) GetBackup(ctx context.Context, id string) (*Backup, error) {
	return c.getBackupOp(ctx, id, "backup_get")
}

func (c *cloud) getBackupOp(ctx context.Context, id, op string) (*Backup, error) {
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Backup wireBackup `json:"backup"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL("backups", id), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	b := out.Backup.toBackup()
	return &b, nil
}

func (c *cloud) fetchBackup(ctx context.Context, id string) (Backup, error) {
	b, err := c.getBackupOp(ctx, id, "backup_poll")
	if err != nil {
		return Backup{}, err
	}
	return *b, nil
}

func (c *cloud) FindBackupsByName(ctx context.Context, name string) ([]Backup, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: "backup_find", Message: "empty name"}
	}
	all, err := c.listBackupsAll(ctx, "backup_find", ListOpts{Name: name})
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, b := range all {
		if b.Name == name {
			out = append(out, b)
		}
	}
	return out, nil
}

func (c *cloud) listBackupsAll(ctx context.Context, op string, o ListOpts) ([]Backup, error) {
	var all []Backup
	o.Marker = ""
	for page := 0; page < maxListPages; page++ {
		p, err := c.listBackupsPage(ctx, op, o)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextMarker == "" || len(p.Items) == 0 {
			break
		}
		o.Marker = p.NextMarker
	}
	return all, nil
}

func (c *cloud) listBackupsPage(ctx context.Context, op string, o ListOpts) (Page[Backup], error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return Page[Backup]{}, err
	}
	var out struct {
		Backups []wireBackup `json:"backups"`
		Links   []wireLink   `json:"backups_links"`
	}
	filters := ListOpts{Name: o.Name, Status: o.Status, VolumeID: o.VolumeID, Limit: o.Limit, Marker: o.Marker}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, method: http.MethodGet,
		url: sc.ServiceURL("backups", "detail") + listQuery(filters, true), out: &out, ok: []int{200}}); err != nil {
		return Page[Backup]{}, err
	}
	p := Page[Backup]{Items: make([]Backup, 0, len(out.Backups))}
	for i := range out.Backups {
		b := out.Backups[i].toBackup()
		if (o.Name == "" || b.Name == o.Name) && matchesMeta(b.Metadata, o.Metadata) {
			p.Items = append(p.Items, b)
		}
	}
	last := ""
	if n := len(out.Backups); n > 0 {
		last = out.Backups[n-1].ID
	}
	p.NextMarker = nextMarker(out.Links, last, len(out.Backups), o.Limit)
	return p, nil
}

func (c *cloud) ListBackups(ctx context.Context, o ListOpts) (Page[Backup], error) {
	return c.listBackupsPage(ctx, "backup_list", o)
}

func (c *cloud) DeleteBackup(ctx context.Context, id string) error {
	const op = "backup_delete"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	return do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL("backups", id), ok: []int{202, 204}})
}
