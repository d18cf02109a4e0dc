package manila

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// listQuery is the common part of a Manila list request. Manila ignores
// filters it does not know (unlike Cinder from 3.31).
type listQuery struct {
	vals             url.Values
	limit, offset    int
	hasLimit         bool
	marker           string
	sortKey, sortDir string
}

func parseList(q *host.Request) (*listQuery, bool) {
	v := q.R.URL.Query()
	lq := &listQuery{vals: v, limit: 1000, marker: v.Get("marker"), sortKey: v.Get("sort_key"), sortDir: v.Get("sort_dir")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			badRequest(q, "limit param must be an integer")
			return nil, false
		}
		if n < 0 {
			badRequest(q, "limit param must be positive")
			return nil, false
		}
		lq.limit, lq.hasLimit = min(n, 1000), true
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			badRequest(q, "offset param must be an integer")
			return nil, false
		}
		if n < 0 {
			badRequest(q, "offset param must be positive")
			return nil, false
		}
		lq.offset = n
	}
	if lq.sortKey == "" {
		lq.sortKey = "created_at"
	}
	if lq.sortDir == "" {
		lq.sortDir = "desc"
	}
	if lq.sortDir != "asc" && lq.sortDir != "desc" {
		badRequest(q, "Invalid sort_dir.")
		return nil, false
	}
	return lq, true
}

// text matches an exact filter ("name") and, from 2.36, an inexact one ("name~").
func (lq *listQuery) text(q *host.Request, key, value string) bool {
	if want, ok := lq.vals[key]; ok && len(want) > 0 && want[0] != value {
		return false
	}
	if want, ok := lq.vals[key+"~"]; ok && len(want) > 0 && q.MV.AtLeast("2.36") && !strings.Contains(value, want[0]) {
		return false
	}
	return true
}

// dict matches a map-valued filter such as metadata={'k':'v'}.
func (lq *listQuery) dict(key string, have map[string]string) bool {
	raw := lq.vals.Get(key)
	if raw == "" {
		return true
	}
	want, err := host.ParseDictFilter(raw)
	if err != nil {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

type item struct {
	id        string
	createdAt time.Time
	fields    map[string]string
	body      any
}

// sortable checks sort_key against the keys a collection sorts by, with
// Zed's refusal (checked on the rig).
func (lq *listQuery) sortable(q *host.Request, keys ...string) bool {
	if lq.vals.Get("sort_key") == "" {
		return true
	}
	for _, k := range append(keys, "created_at", "updated_at", "id") {
		if k == lq.sortKey {
			return true
		}
	}
	badRequest(q, "Invalid input received: Wrong sorting key provided - '"+lq.sortKey+"'.")
	return false
}

// page sorts, applies marker, offset and limit, and writes
// {"<collection>": [...]} plus "<collection>_links" with the next page
// when the page is full (the link names the summary collection even for
// a detail list, as Manila writes it).
func (lq *listQuery) page(q *host.Request, items []item, collection, linkURL string) {
	sort.SliceStable(items, func(i, j int) bool {
		var c int
		switch lq.sortKey {
		case "created_at":
			c = items[i].createdAt.Compare(items[j].createdAt)
		case "id":
			c = strings.Compare(items[i].id, items[j].id)
		default:
			c = strings.Compare(items[i].fields[lq.sortKey], items[j].fields[lq.sortKey])
		}
		if c == 0 {
			c = strings.Compare(items[i].id, items[j].id)
		}
		if lq.sortDir == "asc" {
			return c < 0
		}
		return c > 0
	})
	// An unknown marker is ignored: the list starts at the beginning
	// (checked on the rig).
	start := 0
	for i, it := range items {
		if lq.marker != "" && it.id == lq.marker {
			start = i + 1
		}
	}
	start = min(len(items), start+lq.offset)
	end := min(len(items), start+lq.limit)
	out := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, it.body)
	}
	resp := map[string]any{collection: out}
	if lq.hasLimit && lq.limit > 0 && end-start == lq.limit {
		v := url.Values{}
		v.Set("limit", strconv.Itoa(lq.limit))
		v.Set("marker", items[end-1].id)
		resp[collection+"_links"] = []any{map[string]any{"rel": "next", "href": linkURL + "?" + v.Encode()}}
	}
	host.WriteJSON(q.W, http.StatusOK, resp)
}

func (s *Service) listShares(detail bool) host.Handler {
	return func(q *host.Request) {
		lq, ok := parseList(q)
		if !ok {
			return
		}
		if !lq.sortable(q, "name", "display_name", "status", "size", "share_proto", "availability_zone", "project_id", "user_id",
			"share_type_id", "snapshot_id", "share_network_id", "is_public", "host") {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var items []item
		for _, sh := range s.st.Shares {
			if sh.ProjectID != q.ProjectID || !lq.text(q, "name", sh.Name) || !lq.text(q, "description", sh.Description) ||
				!lq.text(q, "status", sh.Status) || !lq.text(q, "snapshot_id", sh.SnapshotID) ||
				!lq.text(q, "share_network_id", sh.ShareNetworkID) || !lq.text(q, "share_type_id", sh.TypeID) ||
				!lq.text(q, "share_group_id", sh.ShareGroupID) || !lq.dict("metadata", sh.Metadata) {
				continue
			}
			if t := s.st.Types[sh.TypeID]; t != nil && !lq.dict("extra_specs", t.ExtraSpecs) {
				continue
			}
			if p := lq.vals.Get("export_location_path"); p != "" && !hasExport(sh, p, "") {
				continue
			}
			if id := lq.vals.Get("export_location_id"); id != "" && !hasExport(sh, "", id) {
				continue
			}
			var body any
			if detail {
				body = s.shareBodyLocked(q, sh)
			} else {
				body = map[string]any{"id": sh.ID, "name": nullable(sh.Name), "links": s.links(q, "shares", sh.ID)}
			}
			items = append(items, item{id: sh.ID, createdAt: sh.CreatedAt, body: body,
				fields: map[string]string{"name": sh.Name, "display_name": sh.Name, "status": sh.Status, "size": fmt.Sprintf("%09d", sh.Size),
					"share_proto": sh.Proto, "availability_zone": sh.AZ, "project_id": sh.ProjectID, "user_id": sh.UserID,
					"share_type_id": sh.TypeID, "snapshot_id": sh.SnapshotID, "share_network_id": sh.ShareNetworkID}})
		}
		lq.page(q, items, "shares", s.collectionURL(q, "shares"))
	}
}

func hasExport(sh *share, path, id string) bool {
	for _, el := range sh.Exports {
		if (path != "" && el.Path == path) || (id != "" && el.ID == id) {
			return true
		}
	}
	return false
}
