package openstack

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
	var out struct {
		Volume wireVolume `json:"volume"`
	}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL("volumes"), body: body, out: &out, ok: []int{200, 202}}
	var adopted *Volume
	if o.Name != "" {
		// The caller looked the name up before creating: a volume with
		// this name and all of our metadata now is this request's.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindVolumesByName(ctx, o.Name, o.Metadata)
			if err != nil {
				return false, err
			}
			if len(found) > 1 {
				return false, errors.New("several volumes match")
			}
			if len(found) == 1 {
				adopted = &found[0]
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
	v := out.Volume.toVolume()
	return &v, nil
}

func (c *cloud) GetVolume(ctx context.Context, id string) (*Volume, error) {
	return c.getVolumeOp(ctx, id, "volume_get")
}

func (c *cloud) getVolumeOp(ctx context.Context, id, op string) (*Volume, error) {
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Volume wireVolume `json:"volume"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL("volumes", id), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	v := out.Volume.toVolume()
	return &v, nil
}

// checkID refuses an id that would change the request path: a slash, a
// query or an empty id would address another resource or the collection.
func checkID(op, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#%") || id == "." || id == ".." || id == "detail" {
		return &Error{Kind: KindNotFound, Op: op, Resource: id, Message: "not a valid id"}
	}
	return nil
}

func (c *cloud) FindVolumesByName(ctx context.Context, name string, ownerMeta map[string]string) ([]Volume, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: "volume_find", Message: "empty name"}
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	// With 3.34 Cinder filters by name and metadata; without it we list
	// everything and filter here. Either way the result is checked here,
	// since a cloud may ignore a filter it does not know.
	server := c.Features().NameFilter
	all, err := c.listVolumesAll(ctx, sc, "volume_find", ListOpts{Name: name, Metadata: ownerMeta}, server)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, v := range all {
		if v.Name == name && matchesMeta(v.Metadata, ownerMeta) {
			out = append(out, v)
		}
	}
	return out, nil
}

// listVolumesAll follows every page of volumes/detail.
func (c *cloud) listVolumesAll(ctx context.Context, sc gopherClient, op string, o ListOpts, filters bool) ([]Volume, error) {
	var all []Volume
	o.Marker = ""
	for page := 0; page < maxListPages; page++ {
		p, err := c.listVolumesPage(ctx, sc, op, o, filters)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextMarker == "" || len(p.Items) == 0 {
			return all, nil
		}
		o.Marker = p.NextMarker
	}
	return all, nil
}

func (c *cloud) listVolumesPage(ctx context.Context, sc gopherClient, op string, o ListOpts, filters bool) (Page[Volume], error) {
	var out struct {
		Volumes []wireVolume `json:"volumes"`
		Links   []wireLink   `json:"volumes_links"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, method: http.MethodGet,
		url: sc.ServiceURL("volumes", "detail") + listQuery(o, filters), out: &out, ok: []int{200}}); err != nil {
		return Page[Volume]{}, err
	}
	p := Page[Volume]{Items: make([]Volume, 0, len(out.Volumes))}
	for i := range out.Volumes {
		p.Items = append(p.Items, out.Volumes[i].toVolume())
	}
	last := ""
	if len(p.Items) > 0 {
		last = p.Items[len(p.Items)-1].ID
	}
	p.NextMarker = nextMarker(out.Links, last, len(p.Items), o.Limit)
	return p, nil
}

// ListVolumes returns one page. Name and metadata filters are applied by
// Cinder when it supports them (3.34) and always checked here.
func (c *cloud) ListVolumes(ctx context.Context, o ListOpts) (Page[Volume], error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return Page[Volume]{}, err
	}
	p, err := c.listVolumesPage(ctx, sc, "volume_list", o, c.Features().NameFilter)
	if err != nil {
		return p, err
	}
	if o.Name != "" || len(o.Metadata) > 0 {
		kept := p.Items[:0]
		for _, v := range p.Items {
			if (o.Name == "" || v.Name == o.Name) && matchesMeta(v.Metadata, o.Metadata) {
				kept = append(kept, v)
			}
		}
		p.Items = kept
	}
	return p, nil
}

func (c *cloud) DeleteVolume(ctx context.Context, id string) error {
	const op = "volume_delete"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	return do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL("volumes", id), ok: []int{202, 204}})
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
	return do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodPost,
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
