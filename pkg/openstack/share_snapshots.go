package openstack

import (
	"context"
	"net/http"
)

// Manila share snapshots.

func (c *cloud) CreateShareSnapshot(ctx context.Context, o CreateShareSnapshotOpts) (*ShareSnapshot, error) {
	const op = "share_snapshot_create"
	if err := checkID(op, o.ShareID); err != nil {
		return nil, err
	}
	sc, f, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	snap := map[string]any{"share_id": o.ShareID}
	if o.Name != "" {
		snap["name"] = o.Name
	}
	if o.Description != "" {
		snap["description"] = o.Description
	}
	// Snapshot metadata arrived in 2.73; below it the name (and the
	// source share) is the idempotency key and the metadata is dropped.
	if len(o.Metadata) > 0 && f.SnapshotMetadata {
		snap["metadata"] = o.Metadata
	}
	out := oneBody[wireShareSnapshot]{key: "snapshot"}
	r := req{op: op, resource: o.Name, method: http.MethodPost, url: sc.ServiceURL("snapshots"),
		body: map[string]any{"snapshot": snap}, out: &out, ok: []int{200, 202}}
	var adopted *ShareSnapshot
	if o.Name != "" {
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindShareSnapshotsByName(ctx, o.Name)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "share snapshots", func(s *ShareSnapshot) bool { return s.ShareID == o.ShareID })
			return adopted != nil, err
		}
	}
	if err := shareDo(ctx, sc, r); err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	s := out.item.toSnapshot()
	return &s, nil
}

func (c *cloud) GetShareSnapshot(ctx context.Context, id string) (*ShareSnapshot, error) {
	return c.getShareSnapshot(ctx, "share_snapshot_get", id)
}

func (c *cloud) getShareSnapshot(ctx context.Context, op, id string) (*ShareSnapshot, error) {
	return shareGet(ctx, c, op, "snapshots", "snapshot", id, (*wireShareSnapshot).toSnapshot)
}

// FindShareSnapshotsByName lists every snapshot with exactly this name.
func (c *cloud) FindShareSnapshotsByName(ctx context.Context, name string) ([]ShareSnapshot, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: "share_snapshot_find", Message: "empty name"}
	}
	all, err := c.listAllShareSnapshots(ctx, "share_snapshot_find", ShareListOpts{Name: name})
	if err != nil {
		return nil, err
	}
	return keepShareSnapshots(all, name, nil), nil
}

func keepShareSnapshots(items []ShareSnapshot, name string, meta map[string]string) []ShareSnapshot {
	return keepNamedMeta(items, name, meta, func(s *ShareSnapshot) (string, map[string]string) { return s.Name, s.Metadata })
}

// ListShareSnapshots returns one page (the marker is an offset). Name,
// source share and status are filtered by Manila; the metadata filter,
// which needs 2.73, is applied here.
func (c *cloud) ListShareSnapshots(ctx context.Context, o ShareListOpts) (Page[ShareSnapshot], error) {
	p, err := c.listShareSnapshotPage(ctx, "share_snapshot_list", o)
	if err != nil {
		return p, err
	}
	p.Items = keepShareSnapshots(p.Items, o.Name, o.Metadata)
	return p, nil
}

func (c *cloud) listShareSnapshotPage(ctx context.Context, op string, o ShareListOpts) (Page[ShareSnapshot], error) {
	o.Metadata = nil
	return shareListPage(ctx, c, op, "snapshots", o, (*wireShareSnapshot).toSnapshot)
}

func (c *cloud) listAllShareSnapshots(ctx context.Context, op string, o ShareListOpts) ([]ShareSnapshot, error) {
	o.Limit = maxSharePage
	return followPages(func(marker string) (Page[ShareSnapshot], error) {
		o.Marker = marker
		return c.listShareSnapshotPage(ctx, op, o)
	})
}

// DeleteShareSnapshot deletes a snapshot; 404 is KindNotFound. A snapshot
// in a status Manila will not delete is KindConflict.
func (c *cloud) DeleteShareSnapshot(ctx context.Context, id string) error {
	const op = "share_snapshot_delete"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return err
	}
	err = shareDo(ctx, sc, req{op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL("snapshots", id), ok: []int{202, 204}})
	if KindOf(err) == KindConflict {
		// A repeat of a delete Manila already took (the retry of a 5xx).
		if s, gerr := c.getShareSnapshot(ctx, op, id); gerr == nil && s.Status == ShareSnapshotDeleting {
			return nil
		}
	}
	return err
}
