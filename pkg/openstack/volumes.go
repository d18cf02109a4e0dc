package openstack

import (
	"context"
	"net/http"
	"strings"
	"time"
)

func (c *cloud) CreateVolume(ctx context.Context, o CreateVolumeOpts) (*Volume, error) {
	const op = "volume_create"
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, src := range []string{o.SnapshotID, o.SourceVolumeID, o.BackupID} {
		if src != "" {
			n++
		}
	}
	if n > 1 {
		return nil, &Error{Kind: KindBadRequest, Op: op, Resource: o.Name, Message: "at most one of snapshot, source volume and backup may be given"}
	}
	if o.BackupID != "" && !c.Features().CreateFromBackup {
		return nil, &Error{Kind: KindConflict, Op: op, Resource: o.Name,
			Message: "creating a volume from a backup needs Cinder microversion " + mvCreateFromBackup + "; this cloud offers " + c.Features().CinderMicroversion}
	}
	vol := map[string]any{"size": o.SizeGiB}
	set := func(k, v string) {
		if v != "" {
			vol[k] = v
		}
	}
	set("name", o.Name)
	set("description", o.Description)
	set("volume_type", o.VolumeType)
	set("availability_zone", o.AvailabilityZone)
	set("snapshot_id", o.SnapshotID)
	set("source_volid", o.SourceVolumeID)
	set("backup_id", o.BackupID)
	if len(o.Metadata) > 0 {
		vol["metadata"] = o.Metadata
	}
	body := map[string]any{"volume": vol}
	if len(o.SameHost) > 0 || len(o.DifferentHost) > 0 {
		hints := map[string]any{}
		if len(o.SameHost) > 0 {
			hints["same_host"] = o.SameHost
		}
		if len(o.DifferentHost) > 0 {
			hints["different_host"] = o.DifferentHost
		}
		body["OS-SCH-HNT:scheduler_hints"] = hints
	}
	out := oneBody[wireVolume]{key: volumeAPI.key}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL(volumeAPI.path), body: body, out: &out, ok: []int{200, 202}}
	var adopted *Volume
	if o.Name != "" {
		// The caller looked the name up before creating: a volume with
		// this name and all of our metadata now is this request's.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindVolumesByName(ctx, o.Name, o.Metadata)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "volumes", func(*Volume) bool { return true })
			return adopted != nil, err
		}
	}
	at := time.Now()
	if err := do(ctx, sc, r); err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	v := out.item.toVolume()
	c.polls.sent.sent(volumeKey(v.ID), createKind(o), at)
	return &v, nil
}

func (c *cloud) GetVolume(ctx context.Context, id string) (*Volume, error) {
	return getByID(ctx, c, volumeAPI, "volume_get", id)
}

func (c *cloud) fetchVolume(ctx context.Context, id string) (Volume, error) {
	return value(getByID(ctx, c, volumeAPI, "volume_poll", id))
}

// FindVolumesByName lists every volume named name carrying all of
// ownerMeta.
func (c *cloud) FindVolumesByName(ctx context.Context, name string, ownerMeta map[string]string) ([]Volume, error) {
	return findByName(ctx, c, volumeAPI, "volume_find", name, ownerMeta)
}

// ListVolumes returns one page. Name and metadata filters are applied by
// Cinder when it supports them (3.34) and always checked here.
func (c *cloud) ListVolumes(ctx context.Context, o ListOpts) (Page[Volume], error) {
	return listMatching(ctx, c, volumeAPI, "volume_list", o)
}

func (c *cloud) DeleteVolume(ctx context.Context, id string) error {
	return c.logChange(volumeKey(id), changeDeleting, func() error { return deleteByID(ctx, c, volumeAPI.path, "volume_delete", id) })
}

func (c *cloud) ExtendVolume(ctx context.Context, id string, newSizeGiB int, inUse bool) error {
	const op = "volume_extend"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	if inUse && !c.Features().ExtendInUse {
		return &Error{Kind: KindConflict, Op: op, Resource: id,
			Message: "extending an attached volume needs Cinder microversion " + mvExtendInUse + "; this cloud offers " +
				c.Features().CinderMicroversion + " (detach the volume first)"}
	}
	return c.sendChange(ctx, sc, volumeKey(id), changeExtending, req{service: serviceVolume, op: op, resource: id, method: http.MethodPost,
		url:  sc.ServiceURL("volumes", id, "action"),
		body: map[string]any{"os-extend": map[string]any{"new_size": newSizeGiB}}, ok: []int{202},
		// An extend that was acted on shows as the new size or as
		// status extending; repeating it would be refused.
		reconcile: func(ctx context.Context) (bool, error) {
			v, err := c.GetVolume(ctx, id)
			if err != nil {
				return false, err
			}
			return v.SizeGiB >= newSizeGiB || strings.HasPrefix(v.Status, "extending"), nil
		}})
}

func (c *cloud) RetypeVolume(ctx context.Context, id, newType, migrationPolicy string) error {
	const op = "volume_retype"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	return c.sendChange(ctx, sc, volumeKey(id), changeRetyping, req{service: serviceVolume, op: op, resource: id, method: http.MethodPost,
		url:  sc.ServiceURL("volumes", id, "action"),
		body: map[string]any{"os-retype": map[string]any{"new_type": newType, "migration_policy": migrationPolicy}}, ok: []int{202},
		// A retype that was acted on shows as status retyping or as the
		// new type; repeating it would be refused as the same type.
		reconcile: func(ctx context.Context) (bool, error) {
			v, err := c.GetVolume(ctx, id)
			if err != nil {
				return false, err
			}
			return v.Status == VolumeRetyping || v.VolumeType == newType, nil
		}})
}
