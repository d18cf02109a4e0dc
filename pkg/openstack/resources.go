package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Volumes, snapshots and backups look alike on the Cinder API: GET
// <path>/<id> answers {"<key>": {...}}, GET <path>/detail answers
// {"<path>": [...], "<path>_links": [...]}, DELETE <path>/<id> deletes.
// The generic calls below serve all three; a collection names what
// differs between them.
type collection[W, T any] struct {
	path    string // URL segment, also the JSON key of a list: "volumes"
	key     string // JSON key of one resource: "volume"
	convert func(*W) T
	// ref reads what the list helpers need of a converted resource.
	ref func(*T) resourceRef
	// query renders the server-side filters of a listing.
	query func(c *cloud, o ListOpts) string
}

type resourceRef struct {
	id, name string
	meta     map[string]string
}

var (
	volumeAPI = collection[wireVolume, Volume]{path: "volumes", key: "volume", convert: (*wireVolume).toVolume,
		ref: func(v *Volume) resourceRef { return resourceRef{v.ID, v.Name, v.Metadata} },
		// With 3.34 Cinder filters volumes by name and metadata; the
		// result is still checked here, since a cloud may ignore a
		// filter it does not know.
		query: func(c *cloud, o ListOpts) string { return listQuery(o, c.Features().NameFilter) }}
	snapshotAPI = collection[wireSnapshot, Snapshot]{path: "snapshots", key: "snapshot", convert: (*wireSnapshot).toSnapshot,
		ref:   func(s *Snapshot) resourceRef { return resourceRef{s.ID, s.Name, s.Metadata} },
		query: nameFilterOnly}
	backupAPI = collection[wireBackup, Backup]{path: "backups", key: "backup", convert: (*wireBackup).toBackup,
		ref:   func(b *Backup) resourceRef { return resourceRef{b.ID, b.Name, b.Metadata} },
		query: nameFilterOnly}
)

// nameFilterOnly: the name filter on snapshots and backups predates
// microversions; metadata needs 3.22 and is checked here instead.
func nameFilterOnly(_ *cloud, o ListOpts) string {
	o.Metadata = nil
	return listQuery(o, true)
}

// checkID refuses an id that would change the request path: a slash, a
// query or an empty id would address another resource or the collection.
func checkID(op, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#%") || id == "." || id == ".." || id == "detail" {
		return &Error{Kind: KindNotFound, Op: op, Resource: id, Message: "not a valid id"}
	}
	return nil
}

// getByID GETs <path>/<id>.
func getByID[W, T any](ctx context.Context, c *cloud, api collection[W, T], op, id string) (*T, error) {
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	out := oneBody[W]{key: api.key}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL(api.path, id), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	v := api.convert(&out.item)
	return &v, nil
}

// value turns getByID's answer into a poller fetch's.
func value[T any](p *T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return *p, nil
}

// deleteByID DELETEs <path>/<id>.
func deleteByID(ctx context.Context, c *cloud, path, op, id string) error {
	if err := checkID(op, id); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	return do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodDelete,
		url: sc.ServiceURL(path, id), ok: []int{202, 204}})
}

// listPage GETs one page of <path>/detail as Cinder sends it (the name
// and metadata of o are not checked here).
func listPage[W, T any](ctx context.Context, c *cloud, sc gopherClient, api collection[W, T], op string, o ListOpts) (Page[T], error) {
	out := listBody[W]{key: api.path}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, method: http.MethodGet,
		url: sc.ServiceURL(api.path, "detail") + api.query(c, o), out: &out, ok: []int{200}}); err != nil {
		return Page[T]{}, err
	}
	p := Page[T]{Items: make([]T, 0, len(out.items))}
	for i := range out.items {
		p.Items = append(p.Items, api.convert(&out.items[i]))
	}
	last := ""
	if n := len(p.Items); n > 0 {
		last = api.ref(&p.Items[n-1]).id
	}
	p.NextMarker = nextMarker(out.links, last, len(p.Items), o.Limit)
	return p, nil
}

// listMatching returns one page, keeping only the items with o's name
// and metadata.
func listMatching[W, T any](ctx context.Context, c *cloud, api collection[W, T], op string, o ListOpts) (Page[T], error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return Page[T]{}, err
	}
	p, err := listPage(ctx, c, sc, api, op, o)
	if err != nil {
		return p, err
	}
	p.Items = keepMatching(api, p.Items, o.Name, o.Metadata)
	return p, nil
}

// listAll follows every page of <path>/detail, up to maxListPages.
func listAll[W, T any](ctx context.Context, c *cloud, api collection[W, T], op string, o ListOpts) ([]T, error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	return followPages(func(marker string) (Page[T], error) {
		o.Marker = marker
		return listPage(ctx, c, sc, api, op, o)
	})
}

// followPages asks next for each page, from the first (marker ""), until
// one is empty or has no successor, up to maxListPages pages.
func followPages[T any](next func(marker string) (Page[T], error)) ([]T, error) {
	var all []T
	marker := ""
	for page := 0; page < maxListPages; page++ {
		p, err := next(marker)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextMarker == "" || len(p.Items) == 0 {
			break
		}
		marker = p.NextMarker
	}
	return all, nil
}

// findByName lists every resource named name that carries all of meta.
func findByName[W, T any](ctx context.Context, c *cloud, api collection[W, T], op, name string, meta map[string]string) ([]T, error) {
	if name == "" {
		return nil, &Error{Kind: KindBadRequest, Op: op, Message: "empty name"}
	}
	all, err := listAll(ctx, c, api, op, ListOpts{Name: name, Metadata: meta})
	if err != nil {
		return nil, err
	}
	found := keepMatching(api, all, name, meta)
	if len(found) == 0 {
		return nil, nil
	}
	return found, nil
}

// keepMatching keeps, in place, the items named name ("" for any) that
// carry all of meta.
func keepMatching[W, T any](api collection[W, T], items []T, name string, meta map[string]string) []T {
	kept := items[:0]
	for i := range items {
		r := api.ref(&items[i])
		if (name == "" || r.name == name) && matchesMeta(r.meta, meta) {
			kept = append(kept, items[i])
		}
	}
	return kept
}

// adoptOne picks, after an ambiguous create, the one found resource that
// match says the request made: nil when none is, an error when several
// are (the request's key then names more than one resource).
func adoptOne[T any](found []T, plural string, match func(*T) bool) (*T, error) {
	var adopted *T
	for i := range found {
		if match(&found[i]) {
			if adopted != nil {
				return nil, errors.New("several " + plural + " match")
			}
			adopted = &found[i]
		}
	}
	return adopted, nil
}

// oneBody decodes {"<key>": {...}}.
type oneBody[W any] struct {
	key  string
	item W
}

func (b *oneBody[W]) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if v, ok := raw[b.key]; ok {
		return json.Unmarshal(v, &b.item)
	}
	return nil
}

// listBody decodes {"<key>": [...], "<key>_links": [...]}.
type listBody[W any] struct {
	key   string
	items []W
	links []wireLink
}

func (b *listBody[W]) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if v, ok := raw[b.key]; ok {
		if err := json.Unmarshal(v, &b.items); err != nil {
			return err
		}
	}
	if v, ok := raw[b.key+"_links"]; ok {
		return json.Unmarshal(v, &b.links)
	}
	return nil
}
