package openstack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
	gcos "github.com/gophercloud/gophercloud/v2/openstack"
	"k8s.io/klog/v2"
)

// The Manila connection: the "sharev2" endpoint of the catalog and its
// microversion, found on first use and kept for the cloud's life. It
// shares the provider client (token, re-authentication, retry policy, rate
// limiter, observer) with Cinder and Nova, but not their connection: a
// Manila-only cloud never needs a volumev3 endpoint.

var _ ShareCloud = (*cloud)(nil)

// connectShare authenticates (once per cloud), finds Manila in the catalog
// and reads its version document. A failure is not cached.
func (c *cloud) connectShare(ctx context.Context) error {
	c.shareMu.Lock()
	defer c.shareMu.Unlock()
	if c.shareConnected {
		return nil
	}
	if err := c.ensureAuth(ctx); err != nil {
		return err
	}
	sc, err := gcos.NewSharedFileSystemV2(c.provider, c.endpointOpts())
	if err != nil {
		return &Error{Kind: KindConfig, Op: "catalog", Resource: sectionLabel(c.name),
			Message: "no Manila (sharev2) endpoint in the catalog: " + firstLine(err.Error())}
	}
	feats, err := discoverShareFeatures(ctx, c.provider, sc.Endpoint)
	if err != nil {
		return err
	}
	c.share, c.shareFeats, c.shareConnected = sc, feats, true
	klog.V(2).InfoS("Connected to Manila", "cloud", c.name, "manilaMicroversion", feats.Microversion, "project", c.project())
	return nil
}

// shareClient returns a copy of the Manila client at the chosen
// microversion (a copy, so that no call changes a shared client).
func (c *cloud) shareClient(ctx context.Context) (*gophercloud.ServiceClient, ShareFeatures, error) {
	if err := c.connectShare(ctx); err != nil {
		return nil, ShareFeatures{}, err
	}
	c.shareMu.Lock()
	sc := *c.share
	f := c.shareFeats
	c.shareMu.Unlock()
	sc.Microversion = f.Microversion
	return &sc, f, nil
}

// ShareFeatures connects if needed and reports the microversion in use.
func (c *cloud) ShareFeatures(ctx context.Context) (ShareFeatures, error) {
	_, f, err := c.shareClient(ctx)
	return f, err
}

// shareDo sends one Manila request: do() with the Manila service label
// and Manila's error conventions (classifyShare).
func shareDo(ctx context.Context, sc *gophercloud.ServiceClient, r req) error {
	r.service = serviceShare
	return classifyShare(do(ctx, sc, r))
}

// shareListQuery renders Manila's list filters. Manila pages by limit and
// offset, not marker: the marker of our Page is the offset as a decimal
// string. Its metadata filter is a dict literal; JSON is one.
func shareListQuery(o ShareListOpts) (string, int, error) {
	q := url.Values{}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.ShareID != "" {
		q.Set("share_id", o.ShareID)
	}
	if len(o.Metadata) > 0 {
		b, _ := json.Marshal(o.Metadata)
		q.Set("metadata", string(b))
	}
	offset := 0
	if o.Marker != "" {
		n, err := strconv.Atoi(o.Marker)
		if err != nil || n < 0 {
			return "", 0, &Error{Kind: KindBadRequest, Op: "share_list", Resource: o.Marker, Message: "not a marker this driver issued"}
		}
		offset = n
		q.Set("offset", o.Marker)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	// A stable order keeps offsets meaningful between pages.
	q.Set("sort_key", "created_at")
	q.Set("sort_dir", "asc")
	return "?" + q.Encode(), offset, nil
}

// shareNextMarker: a full page may have a successor.
func shareNextMarker(offset, got, limit int) string {
	if limit > 0 && got >= limit {
		return strconv.Itoa(offset + got)
	}
	return ""
}

// keepNamedMeta keeps the items named name ("" for any) that carry all of
// meta, as of reads them; nil when none does.
func keepNamedMeta[T any](items []T, name string, meta map[string]string, of func(*T) (string, map[string]string)) []T {
	var kept []T
	for i := range items {
		if n, m := of(&items[i]); (name == "" || n == name) && matchesMeta(m, meta) {
			kept = append(kept, items[i])
		}
	}
	return kept
}

// shareGet GETs <path>/<id> from Manila, the resource under key.
func shareGet[W, T any](ctx context.Context, c *cloud, op, path, key, id string, convert func(*W) T) (*T, error) {
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	out := oneBody[W]{key: key}
	if err := shareDo(ctx, sc, req{op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL(path, id), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	v := convert(&out.item)
	return &v, nil
}

// shareListPage GETs one page of <path>/detail from Manila, whose list
// key is path too, with o as the query.
func shareListPage[W, T any](ctx context.Context, c *cloud, op, path string, o ShareListOpts, convert func(*W) T) (Page[T], error) {
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return Page[T]{}, err
	}
	q, offset, err := shareListQuery(o)
	if err != nil {
		return Page[T]{}, err
	}
	out := listBody[W]{key: path}
	if err := shareDo(ctx, sc, req{op: op, method: http.MethodGet,
		url: sc.ServiceURL(path, "detail") + q, out: &out, ok: []int{200}}); err != nil {
		return Page[T]{}, err
	}
	p := Page[T]{Items: make([]T, 0, len(out.items))}
	for i := range out.items {
		p.Items = append(p.Items, convert(&out.items[i]))
	}
	p.NextMarker = shareNextMarker(offset, len(out.items), o.Limit)
	return p, nil
}

// maxSharePage is the page size of a listing that follows every page:
// Manila's osapi_max_limit default.
const maxSharePage = 1000

// Wire types: the JSON Manila sends.

type wireShare struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Status           string            `json:"status"`
	Size             int               `json:"size"`
	ShareProto       string            `json:"share_proto"`
	ShareType        string            `json:"share_type"`
	ShareTypeName    string            `json:"share_type_name"`
	AvailabilityZone string            `json:"availability_zone"`
	ShareNetworkID   string            `json:"share_network_id"`
	ShareGroupID     string            `json:"share_group_id"`
	SnapshotID       string            `json:"snapshot_id"`
	Metadata         map[string]string `json:"metadata"`
	CreatedAt        osTime            `json:"created_at"`
}

func (w *wireShare) toShare() Share {
	return Share{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status, SizeGiB: w.Size,
		Protocol: w.ShareProto, ShareType: w.ShareType, ShareTypeName: w.ShareTypeName,
		AvailabilityZone: w.AvailabilityZone, ShareNetworkID: w.ShareNetworkID, ShareGroupID: w.ShareGroupID,
		SnapshotID: w.SnapshotID, Metadata: w.Metadata, CreatedAt: timeOf(w.CreatedAt)}
}

type wireShareSnapshot struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Status      string            `json:"status"`
	ShareID     string            `json:"share_id"`
	Size        int               `json:"size"`
	ShareSize   int               `json:"share_size"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   osTime            `json:"created_at"`
}

func (w *wireShareSnapshot) toSnapshot() ShareSnapshot {
	return ShareSnapshot{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		ShareID: w.ShareID, SizeGiB: w.Size, ShareSize: w.ShareSize, Metadata: w.Metadata, CreatedAt: timeOf(w.CreatedAt)}
}

type wireAccessRule struct {
	ID          string            `json:"id"`
	ShareID     string            `json:"share_id"`
	AccessType  string            `json:"access_type"`
	AccessTo    string            `json:"access_to"`
	AccessLevel string            `json:"access_level"`
	State       string            `json:"state"`
	AccessKey   *string           `json:"access_key"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   osTime            `json:"created_at"`
}

func (w *wireAccessRule) toRule(shareID string) AccessRule {
	r := AccessRule{ID: w.ID, ShareID: w.ShareID, AccessType: w.AccessType, AccessTo: w.AccessTo,
		AccessLevel: w.AccessLevel, State: w.State, Metadata: w.Metadata, CreatedAt: timeOf(w.CreatedAt)}
	if w.AccessKey != nil {
		r.AccessKey = *w.AccessKey
	}
	if r.ShareID == "" {
		r.ShareID = shareID // the access_list action omits it
	}
	return r
}

type wireExportLocation struct {
	ID              string `json:"id"`
	Path            string `json:"path"`
	Preferred       bool   `json:"preferred"`
	IsAdminOnly     bool   `json:"is_admin_only"`
	ShareInstanceID string `json:"share_instance_id"`
}
