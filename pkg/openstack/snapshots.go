package openstack

import (
	"context"
	"errors"
	"net/http"
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
	var out struct {
		Snapshot wireSnapshot `json:"snapshot"`
	}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL("snapshots"), body: map[string]any{"snapshot": snap}, out: &out, ok: []int{200, 202}}
	var adopted *Snapshot
	if o.Name != "" {
		// As for volumes: name, source volume and our metadata identify
		// the snapshot this request made.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindSnapshotsByName(ctx, o.Name)
			if err != nil {
				return false, err
			}
			for i := range found {
				if found[i].VolumeID == o.VolumeID && matchesMeta(found[i].Metadata, o.Metadata) {
					if adopted != nil {
						return false, errors.New("several snapshots match")
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
	s := out.Snapshot.toSnapshot()
	return &s, nil
}

func (c *cloud) GetSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	return c.getSnapshotOp(ctx, id, "snapshot_get")
}

func (c *cloud) getSnapshotOp(ctx context.Context, id, op string) (*Snapshot, error) {
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Snapshot wireSnapshot `json:"snapshot"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL("snapshots", id), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	s := out.Snapshot.toSnapshot()
	return &s, nil
}

func (c *cloud) fetchSnapshot(ctx context.Context, id string) (Snapshot, error) {
	s, err := c.getSnapshotOp(ctx, id, "snapshot_poll")
	if err != nil {
		return Snapshot{}, err
	}
	return *s, nil
}

func (c *cloud) FindSnapshotsByName(ctx context.Context, name string) ([]Snapshot, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: "snapshot_find", Message: "empty name"}
	}
	all, err := c.listSnapshotsAll(ctx, "snapshot_find", ListOpts{Name: name})
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, s := range all {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out, nil
}

func (c *cloud) listSnapshotsAll(ctx context.Context, op string, o ListOpts) ([]Snapshot, error) {
	var all []Snapshot
	o.Marker = ""
	for page := 0; page < maxListPages; page++ {
		p, err := c.listSnapshotsPage(ctx, op, o)
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

func (c *cloud) listSnapshotsPage(ctx context.Context, op string, o ListOpts) (Page[Snapshot], error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return Page[Snapshot]{}, err
	}
	var out struct {
		Snapshots []wireSnapshot `json:"snapshots"`
		Links     []wireLink     `json:"snapshots_links"`
	}
	// The name filter on snapshots predates microversions; metadata
	// needs 3.22 and is checked here instead.
	filters := ListOpts{Name: o.Name, Status: o.Status, VolumeID: o.VolumeID, Limit: o.Limit, Marker: o.Marker}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, method: http.MethodGet,
		url: sc.ServiceURL("snapshots", "detail") + listQuery(filters, true), out: &out, ok: []int{200}}); err != nil {
		return Page[Snapshot]{}, err
	}
	p := Page[Snapshot]{Items: make([]Snapshot, 0, len(out.Snapshots))}
	for i := range out.Snapshots {
		s := out.Snapshots[i].toSnapshot()
		if (o.Name == "" || s.Name == o.Name) && matchesMeta(s.Metadata, o.Metadata) {
			p.Items = append(p.Items, s)
		}
	}
	last := ""
	if n := len(out.Snapshots); n > 0 {
		last = out.Snapshots[n-1].ID
	}
	p.NextMarker = nextMarker(out.Links, last, len(out.Snapshots), o.Limit)
	return p, nil
}

func (c *cloud) ListSnapshots(ctx context.Context, o ListOpts) (Page[Snapshot], error) {
	return c.listSnapshotsPage(ctx, "snapshot_list", o)
}

func (c *cloud) DeleteSnapshot(ctx context.Context, id string) error {
	const op = "snapshot_delete"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	return do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL("snapshots", id), ok: []int{202, 204}})
}
