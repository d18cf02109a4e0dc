package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
)

// Manila's catalogue and accounting: share types, availability zones,
// quotas and user messages.

// GetShareType finds a type by name or id with one listing (what a
// StorageClass holds is usually a name). Extra specs are those Manila
// shows to this user: for a non-admin the tenant-visible ones, which
// include driver_handles_share_servers and the snapshot capabilities.
func (c *cloud) GetShareType(ctx context.Context, nameOrID string) (*ShareType, error) {
	const op = "share_type_list"
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Types []struct {
			ID         string                     `json:"id"`
			Name       string                     `json:"name"`
			ExtraSpecs map[string]json.RawMessage `json:"extra_specs"`
		} `json:"share_types"`
	}
	if err := shareDo(ctx, sc, req{op: op, resource: nameOrID, method: http.MethodGet,
		url: sc.ServiceURL("types"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	for _, t := range out.Types {
		if t.ID == nameOrID || t.Name == nameOrID {
			return toShareType(t.ID, t.Name, t.ExtraSpecs), nil
		}
	}
	// A private type the project was given access to is not always in a
	// non-admin's listing; its id still answers a show.
	if checkID(op, nameOrID) == nil {
		var one struct {
			Type struct {
				ID         string                     `json:"id"`
				Name       string                     `json:"name"`
				ExtraSpecs map[string]json.RawMessage `json:"extra_specs"`
			} `json:"share_type"`
		}
		err := shareDo(ctx, sc, req{op: "share_type_get", resource: nameOrID, method: http.MethodGet,
			url: sc.ServiceURL("types", nameOrID), out: &one, ok: []int{200}})
		switch {
		case err == nil && one.Type.ID != "":
			return toShareType(one.Type.ID, one.Type.Name, one.Type.ExtraSpecs), nil
		case err != nil && !IsNotFound(err) && KindOf(err) != KindBadRequest:
			return nil, err
		}
	}
	return nil, &Error{Kind: KindNotFound, Op: op, Resource: nameOrID, Message: "no share type with this name or id", StatusCode: http.StatusNotFound}
}

func toShareType(id, name string, specs map[string]json.RawMessage) *ShareType {
	st := &ShareType{ID: id, Name: name, ExtraSpecs: map[string]string{}}
	for k, raw := range specs {
		st.ExtraSpecs[k] = specString(raw)
	}
	st.DriverHandlesShareServers = specTrue(st.ExtraSpecs["driver_handles_share_servers"])
	st.SnapshotSupport = specTrue(st.ExtraSpecs["snapshot_support"])
	st.CreateShareFromSnapshotSupport = specTrue(st.ExtraSpecs["create_share_from_snapshot_support"])
	return st
}

// specString reads an extra spec value, which Manila sends as a string
// but some tools store as a JSON boolean.
func specString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var v any
	if json.Unmarshal(raw, &v) == nil && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func specTrue(v string) bool {
	var f flexBool
	b, _ := json.Marshal(v)
	_ = f.UnmarshalJSON(b)
	return bool(f)
}

func (c *cloud) ListShareAvailabilityZones(ctx context.Context) ([]string, error) {
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Zones []struct {
			Name string `json:"name"`
		} `json:"availability_zones"`
	}
	if err := shareDo(ctx, sc, req{op: "share_availability_zone_list", method: http.MethodGet,
		url: sc.ServiceURL("availability-zones"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var zones []string
	for _, z := range out.Zones {
		if z.Name != "" && !seen[z.Name] {
			seen[z.Name] = true
			zones = append(zones, z.Name)
		}
	}
	sort.Strings(zones)
	return zones, nil
}

// GetShareQuota reads the project's quota with usage
// (/quota-sets/{project}/detail, 2.25).
func (c *cloud) GetShareQuota(ctx context.Context) (*ShareQuota, error) {
	const op = "share_quota"
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	project := c.project()
	if project == "" {
		return nil, &Error{Kind: KindConfig, Op: op, Message: "the token is not scoped to a project"}
	}
	var out struct {
		QuotaSet struct {
			Gigabytes wireQuota `json:"gigabytes"`
			Shares    wireQuota `json:"shares"`
			Snapshots wireQuota `json:"snapshots"`
		} `json:"quota_set"`
	}
	if err := shareDo(ctx, sc, req{op: op, resource: project, method: http.MethodGet,
		url: sc.ServiceURL("quota-sets", url.PathEscape(project), "detail"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	q := out.QuotaSet
	use := func(w wireQuota) QuotaUsage { return QuotaUsage{Limit: w.Limit, InUse: w.InUse, Reserved: w.Reserved} }
	return &ShareQuota{Gigabytes: use(q.Gigabytes), Shares: use(q.Shares), Snapshots: use(q.Snapshots)}, nil
}

// LatestShareMessage returns Manila's newest user message about a
// resource (/messages, 2.37), or nil.
func (c *cloud) LatestShareMessage(ctx context.Context, resourceID string) (*ShareMessage, error) {
	const op = "share_messages"
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("resource_id", resourceID)
	q.Set("sort_key", "created_at")
	q.Set("sort_dir", "desc")
	q.Set("limit", "1")
	var out struct {
		Messages []struct {
			ID           string `json:"id"`
			ResourceType string `json:"resource_type"`
			ResourceID   string `json:"resource_id"`
			UserMessage  string `json:"user_message"`
			CreatedAt    osTime `json:"created_at"`
		} `json:"messages"`
	}
	if err := shareDo(ctx, sc, req{op: op, resource: resourceID, method: http.MethodGet,
		url: sc.ServiceURL("messages") + "?" + q.Encode(), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	var best *ShareMessage
	for _, m := range out.Messages {
		if m.ResourceID != "" && m.ResourceID != resourceID {
			continue // a cloud that ignored the filter
		}
		sm := &ShareMessage{ID: m.ID, ResourceType: m.ResourceType, ResourceID: m.ResourceID,
			UserMessage: m.UserMessage, CreatedAt: timeOf(m.CreatedAt)}
		if best == nil || sm.CreatedAt.After(best.CreatedAt) {
			best = sm
		}
	}
	return best, nil
}
