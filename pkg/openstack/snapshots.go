package openstack

import (
	"context"
	"net/http"
	"time"
)

func (c *cloud) CreateSnapshot(ctx context.Context, o CreateSnapshotOpts) (*Snapshot, error) {
	const op = "snapshot_create"
	if err := checkID(op, o.VolumeID); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	snap := map[string]any{"volume_id": o.VolumeID}
	if o.Name != "" {
		snap["name"] = o.Name
	}
	if o.Description != "" {
		snap["description"] = o.Description
	}
	if o.Force {
		snap["force"] = true
	}
	if len(o.Metadata) > 0 {
		snap["metadata"] = o.Metadata
	}
	out := oneBody[wireSnapshot]{key: snapshotAPI.key}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL(snapshotAPI.path), body: map[string]any{snapshotAPI.key: snap}, out: &out, ok: []int{200, 202}}
	var adopted *Snapshot
	if o.Name != "" {
		// As for volumes: name, source volume and our metadata identify
		// the snapshot this request made.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindSnapshotsByName(ctx, o.Name)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "snapshots", func(s *Snapshot) bool {
				return s.VolumeID == o.VolumeID && matchesMeta(s.Metadata, o.Metadata)
			})
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
	s := out.item.toSnapshot()
	c.polls.sent.sent(snapshotKey(s.ID), changeCreating, at)
	return &s, nil
}

func (c *cloud) GetSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	return getByID(ctx, c, snapshotAPI, "snapshot_get", id)
}

func (c *cloud) fetchSnapshot(ctx context.Context, id string) (Snapshot, error) {
	return value(getByID(ctx, c, snapshotAPI, "snapshot_poll", id))
}

func (c *cloud) FindSnapshotsByName(ctx context.Context, name string) ([]Snapshot, error) {
	return findByName(ctx, c, snapshotAPI, "snapshot_find", name, nil)
}

func (c *cloud) ListSnapshots(ctx context.Context, o ListOpts) (Page[Snapshot], error) {
	return listMatching(ctx, c, snapshotAPI, "snapshot_list", o)
}

func (c *cloud) DeleteSnapshot(ctx context.Context, id string) error {
	return c.logChange(snapshotKey(id), changeDeleting, func() error { return deleteByID(ctx, c, snapshotAPI.path, "snapshot_delete", id) })
}
