package openstack

import (
	"context"
	"net/http"
	"strings"

	"k8s.io/klog/v2"
)

// Manila shares: create (with adoption after an ambiguous failure), get,
// list, delete (force_delete for one stuck in error), extend, shrink,
// export locations and metadata.

func (c *cloud) CreateShare(ctx context.Context, o CreateShareOpts) (*Share, error) {
	const op = "share_create"
	sc, f, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	if o.Protocol == "" || o.SizeGiB <= 0 {
		return nil, &Error{Kind: KindBadRequest, Op: op, Resource: o.Name, Message: "a share needs a protocol and a size of at least 1 GiB"}
	}
	share := map[string]any{"share_proto": o.Protocol, "size": o.SizeGiB}
	set := func(k, v string) {
		if v != "" {
			share[k] = v
		}
	}
	set("name", o.Name)
	set("description", o.Description)
	set("share_type", o.ShareType)
	set("availability_zone", o.AvailabilityZone)
	set("share_network_id", o.ShareNetworkID)
	set("share_group_id", o.ShareGroupID)
	set("snapshot_id", o.SnapshotID)
	if len(o.Metadata) > 0 {
		share["metadata"] = o.Metadata
	}
	if len(o.SameHost) > 0 || len(o.DifferentHost) > 0 {
		if !f.SchedulerHints {
			return nil, &Error{Kind: KindConflict, Op: op, Resource: o.Name,
				Message: "affinity and anti-affinity need Manila microversion " + mvShareHints + "; this cloud offers " + f.Microversion}
		}
		hints := map[string]string{}
		if len(o.SameHost) > 0 {
			hints["same_host"] = strings.Join(o.SameHost, ",")
		}
		if len(o.DifferentHost) > 0 {
			hints["different_host"] = strings.Join(o.DifferentHost, ",")
		}
		share["scheduler_hints"] = hints
	}
	out := oneBody[wireShare]{key: "share"}
	r := req{op: op, resource: o.Name, method: http.MethodPost, url: sc.ServiceURL("shares"),
		body: map[string]any{"share": share}, out: &out, ok: []int{200, 202}}
	var adopted *Share
	if o.Name != "" {
		// The caller looked the name up before creating: a share with
		// this name and all of our metadata now is this request's.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindSharesByName(ctx, o.Name, o.Metadata)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "shares", func(s *Share) bool { return s.SnapshotID == o.SnapshotID })
			return adopted != nil, err
		}
	}
	if err := shareDo(ctx, sc, r); err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	s := out.item.toShare()
	return &s, nil
}

func (c *cloud) GetShare(ctx context.Context, id string) (*Share, error) {
	return c.getShare(ctx, "share_get", id)
}

func (c *cloud) getShare(ctx context.Context, op, id string) (*Share, error) {
	return shareGet(ctx, c, op, "shares", "share", id, (*wireShare).toShare)
}

// FindSharesByName lists every share named name carrying all of ownerMeta.
// Manila filters by name and metadata; the result is checked here too,
// since a filter a cloud does not know is ignored.
func (c *cloud) FindSharesByName(ctx context.Context, name string, ownerMeta map[string]string) ([]Share, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: "share_find", Message: "empty name"}
	}
	all, err := c.listAllShares(ctx, "share_find", ShareListOpts{Name: name, Metadata: ownerMeta})
	if err != nil {
		return nil, err
	}
	return keepShares(all, name, ownerMeta), nil
}

func keepShares(items []Share, name string, meta map[string]string) []Share {
	return keepNamedMeta(items, name, meta, func(s *Share) (string, map[string]string) { return s.Name, s.Metadata })
}

// ListShares returns one page; the marker is an offset (Manila pages by
// offset).
func (c *cloud) ListShares(ctx context.Context, o ShareListOpts) (Page[Share], error) {
	p, err := c.listSharePage(ctx, "share_list", o)
	if err != nil {
		return p, err
	}
	p.Items = keepShares(p.Items, o.Name, o.Metadata)
	return p, nil
}

func (c *cloud) listSharePage(ctx context.Context, op string, o ShareListOpts) (Page[Share], error) {
	o.ShareID = "" // a snapshot filter
	return shareListPage(ctx, c, op, "shares", o, (*wireShare).toShare)
}

// listAllShares follows every page, up to maxListPages.
func (c *cloud) listAllShares(ctx context.Context, op string, o ShareListOpts) ([]Share, error) {
	o.Limit = maxSharePage
	return followPages(func(marker string) (Page[Share], error) {
		o.Marker = marker
		return c.listSharePage(ctx, op, o)
	})
}

// DeleteShare deletes a share, also one in an error status. Manila
// deletes a share in available, error or inactive with a plain DELETE;
// any other status (error_deleting, extending_error, shrinking_error...)
// is refused with 403 "Invalid share", which classifyShare makes
// KindConflict. Then, and only for a share in an error status, the
// force_delete action is tried: Manila's default policy allows it to
// admins only, so for most projects it answers 403 and the original
// refusal is returned with what an operator must do. A share with
// snapshots stays refused (KindConflict): the caller names the snapshots.
// A share already deleting is success (a retried DELETE after a 5xx).
// 404 is KindNotFound; the caller decides it means done.
func (c *cloud) DeleteShare(ctx context.Context, id string) error {
	const op = "share_delete"
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return err
	}
	err = shareDo(ctx, sc, req{op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL("shares", id), ok: []int{202, 204}})
	if KindOf(err) != KindConflict {
		return err
	}
	s, gerr := c.getShare(ctx, op, id)
	switch {
	case gerr == nil && s.Status == ShareDeleting:
		return nil // a repeat of a delete Manila already took (the retry of a 5xx)
	case gerr != nil || !isShareErrorStatus(s.Status):
		return err
	}
	ferr := shareDo(ctx, sc, req{op: "share_force_delete", resource: id, method: http.MethodPost,
		url: sc.ServiceURL("shares", id, "action"), body: map[string]any{"force_delete": nil}, ok: []int{202}})
	switch {
	case ferr == nil:
		klog.FromContext(ctx).Info("Force-deleted a share Manila would not delete", "shareID", id, "status", s.Status)
		return nil
	case KindOf(ferr) == KindForbidden:
		e := err.(*Error)
		e.Message += "; the share is " + s.Status + " and force_delete is not allowed for this user: an administrator must run `manila reset-state " +
			id + "` or `manila force-delete " + id + "`"
		return e
	default:
		return ferr
	}
}

// isShareErrorStatus: Manila's error statuses are error, error_deleting
// and <action>_error (extending_error, shrinking_error,
// shrinking_possible_data_loss_error, manage_error...).
func isShareErrorStatus(s string) bool {
	return s == ShareError || strings.HasPrefix(s, "error_") || strings.HasSuffix(s, "_error")
}

func (c *cloud) ExtendShare(ctx context.Context, id string, newSizeGiB int) error {
	return c.resizeShare(ctx, "share_extend", "extend", id, newSizeGiB, func(s *Share) bool {
		return s.SizeGiB >= newSizeGiB || s.Status == ShareExtending
	})
}

// ShrinkShare asks Manila to shrink. A size not below the current one is
// refused synchronously (400, KindBadRequest); a share not available is
// KindConflict; a shrink below the used space is refused by the backend
// later, as status shrinking_possible_data_loss_error, which a wait
// reports as KindErrorState.
func (c *cloud) ShrinkShare(ctx context.Context, id string, newSizeGiB int) error {
	return c.resizeShare(ctx, "share_shrink", "shrink", id, newSizeGiB, func(s *Share) bool {
		return s.SizeGiB <= newSizeGiB || s.Status == ShareShrinking
	})
}

// resizeShare sends the extend or shrink action. An action that was acted
// on shows as the new size or the transitional status; repeating it would
// be refused, so an ambiguous failure is reconciled by a GET.
func (c *cloud) resizeShare(ctx context.Context, op, action, id string, newSizeGiB int, applied func(*Share) bool) error {
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return err
	}
	return shareDo(ctx, sc, req{op: op, resource: id, method: http.MethodPost,
		url:  sc.ServiceURL("shares", id, "action"),
		body: map[string]any{action: map[string]any{"new_size": newSizeGiB}}, ok: []int{202},
		reconcile: func(ctx context.Context) (bool, error) {
			s, err := c.getShare(ctx, op, id)
			if err != nil {
				return false, err
			}
			return applied(s), nil
		}})
}

// ListExportLocations returns the share's export locations with preferred
// and, where Manila shows them to this user, is_admin_only. At 2.47 and
// later Manila leaves out the locations of non-active replicas.
func (c *cloud) ListExportLocations(ctx context.Context, shareID string) ([]ExportLocation, error) {
	const op = "share_export_locations"
	if err := checkID(op, shareID); err != nil {
		return nil, err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Locations []wireExportLocation `json:"export_locations"`
	}
	if err := shareDo(ctx, sc, req{op: op, resource: shareID, method: http.MethodGet,
		url: sc.ServiceURL("shares", shareID, "export_locations"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	locs := make([]ExportLocation, 0, len(out.Locations))
	for _, l := range out.Locations {
		locs = append(locs, ExportLocation{ID: l.ID, Path: l.Path, Preferred: l.Preferred,
			IsAdminOnly: l.IsAdminOnly, ShareInstanceID: l.ShareInstanceID})
	}
	return locs, nil
}

// SetShareMetadata sets (adds or overwrites) the given keys; other keys
// stay. POST /shares/{id}/metadata is idempotent in effect.
func (c *cloud) SetShareMetadata(ctx context.Context, shareID string, meta map[string]string) error {
	const op = "share_metadata_set"
	if err := checkID(op, shareID); err != nil {
		return err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return err
	}
	return shareDo(ctx, sc, req{op: op, resource: shareID, method: http.MethodPost,
		url: sc.ServiceURL("shares", shareID, "metadata"), body: map[string]any{"metadata": meta}, ok: []int{200}})
}
