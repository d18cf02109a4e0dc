package emulator

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

// osapiMaxLimit mirrors Cinder's default osapi_max_limit.
const osapiMaxLimit = 1000

func (e *Emulator) cinderVersionDoc(base string) map[string]any {
	return map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": e.maxCinder.String(), "min_version": "3.0",
		"updated":     "2023-08-31T00:00:00Z",
		"links":       []any{map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}, map[string]any{"rel": "self", "href": base + "/volume/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}
}

func (e *Emulator) cinderVersions(q *req) {
	writeJSON(q.w, http.StatusMultipleChoices, map[string]any{"versions": []any{e.cinderVersionDoc(e.baseURLFor(q.r))}})
}

func (e *Emulator) cinderV3Version(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{"versions": []any{e.cinderVersionDoc(e.baseURLFor(q.r))}})
}

// cinderURL builds a resource URL the way Cinder writes links.
func (e *Emulator) cinderURL(q *req, parts ...string) string {
	return e.baseURLFor(q.r) + "/volume/v3/" + q.tok.ProjectID + "/" + strings.Join(parts, "/")
}

func (e *Emulator) cinderLinks(q *req, collection, id string) []any {
	return []any{
		map[string]any{"rel": "self", "href": e.cinderURL(q, collection, id)},
		map[string]any{"rel": "bookmark", "href": e.baseURLFor(q.r) + "/volume/" + q.tok.ProjectID + "/" + collection + "/" + id},
	}
}

// The project owning a stored resource, for visibleLocked.
func (v *volume) owner() string   { return v.ProjectID }
func (s *snapshot) owner() string { return s.ProjectID }
func (b *backup) owner() string   { return b.ProjectID }
func (m *message) owner() string  { return m.ProjectID }

// visibleLocked returns the caller's resource id from m, or answers 404
// with Cinder's "<kind> <id> could not be found." (another project's
// resource is as absent as a missing one).
func visibleLocked[R interface{ owner() string }](q *req, m map[string]R, kind, id string) R {
	r, ok := m[id]
	if !ok || r.owner() != q.tok.ProjectID {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("%s %s could not be found.", kind, id))
		var none R
		return none
	}
	return r
}

// The status and data file of a stored snapshot or backup, for dropLater.
func (s *snapshot) state() string    { return s.Status }
func (b *backup) state() string      { return b.Status }
func (s *snapshot) dataFile() string { return s.DataFile }
func (b *backup) dataFile() string   { return b.DataFile }

// dropLater ends an asynchronous delete a tick later: the resource id
// leaves m with its data file, unless its status has moved on from
// "deleting" meanwhile. (m is the live store map: the store is replaced
// only by loadState, before the emulator serves.)
func dropLater[R interface {
	state() string
	dataFile() string
}](e *Emulator, op string, m map[string]R, id string) {
	e.later(op, 1, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		r, ok := m[id]
		if !ok || r.state() != "deleting" {
			return
		}
		removeFile(r.dataFile())
		delete(m, id)
		e.markDirty()
	})
}

// listQuery is the parsed common part of a Cinder list request.
type listQuery struct {
	limit    int
	hasLimit bool
	marker   string
	offset   int
	sortKeys []string
	sortDirs []string
	filters  url.Values
}

var pagingKeys = map[string]bool{"limit": true, "marker": true, "offset": true, "sort": true, "sort_key": true, "sort_dir": true, "with_count": true, "all_tenants": true, "project_id": true}

// parseListQuery validates paging, sorting and filter keys. allowed lists the
// filter keys for this resource; at >= 3.31 Cinder rejects any other key.
func parseListQuery(q *req, allowed map[string]bool) (*listQuery, bool) {
	vals := q.r.URL.Query()
	lq := &listQuery{filters: url.Values{}, limit: osapiMaxLimit}
	if s := vals.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, "limit param must be an integer")
			return nil, false
		}
		if n < 0 {
			writeError(q.w, http.StatusBadRequest, "limit param must be positive")
			return nil, false
		}
		lq.hasLimit = true
		lq.limit = min(n, osapiMaxLimit)
	}
	if s := vals.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(q.w, http.StatusBadRequest, "offset param must be a positive integer")
			return nil, false
		}
		lq.offset = n
	}
	lq.marker = vals.Get("marker")
	lq.sortKeys, lq.sortDirs = parseSort(vals)
	for i, d := range lq.sortDirs {
		if d != "asc" && d != "desc" {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid sort direction %s for key %s.", d, lq.sortKeys[i]))
			return nil, false
		}
	}
	if bad := lq.takeFilters(q, vals, allowed); len(bad) > 0 {
		sort.Strings(bad)
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid filters %s are found in query options.", strings.Join(bad, ",")))
		return nil, false
	}
	return lq, true
}

// parseSort reads sort=k1:dir,k2 or sort_key and sort_dir; a direction
// defaults to desc.
func parseSort(vals url.Values) (keys, dirs []string) {
	if s := vals.Get("sort"); s != "" {
		for _, item := range strings.Split(s, ",") {
			k, d, _ := strings.Cut(strings.TrimSpace(item), ":")
			if d == "" {
				d = "desc"
			}
			keys = append(keys, k)
			dirs = append(dirs, d)
		}
		return keys, dirs
	}
	if s := vals.Get("sort_key"); s != "" {
		d := vals.Get("sort_dir")
		if d == "" {
			d = "desc"
		}
		return []string{s}, []string{d}
	}
	return nil, nil
}

// takeFilters keeps the allowed filter keys of vals in lq.filters and
// returns the keys Cinder rejects at this microversion (none below 3.31,
// where unknown keys are ignored).
func (lq *listQuery) takeFilters(q *req, vals url.Values, allowed map[string]bool) []string {
	var bad []string
	for k, v := range vals {
		if pagingKeys[k] {
			continue
		}
		if strings.HasSuffix(k, "~") {
			// Zed's default resource_filters.json configures no inexact
			// key, so a non-admin's "name~" is rejected from 3.31 and
			// ignored below, like any unknown filter (checked on Zed).
			// It works only for a key configured as "<key>~" (3.34+).
			if allowed[k] && q.mv.AtLeast("3.34") {
				lq.filters[k] = v
			} else if q.mv.AtLeast("3.31") {
				bad = append(bad, k)
			}
			continue
		}
		if !allowed[strings.TrimSuffix(k, "~")] {
			if q.mv.AtLeast("3.31") {
				bad = append(bad, k)
			}
			continue
		}
		lq.filters[k] = v
	}
	return bad
}

// parseMetadataFilter accepts the JSON or Python-dict text Cinder clients send
// for ?metadata= (gophercloud sends {'k':'v'}).
func parseMetadataFilter(s string) (map[string]string, error) { return host.ParseDictFilter(s) }

// matchText applies an exact ("name") or, where configured, inexact ("name~") filter.
func (lq *listQuery) matchText(key, value string) bool {
	if vs, ok := lq.filters[key]; ok && len(vs) > 0 && value != vs[0] {
		return false
	}
	if vs, ok := lq.filters[key+"~"]; ok && len(vs) > 0 && !strings.Contains(value, vs[0]) {
		return false
	}
	return true
}

func (lq *listQuery) matchMetadata(md map[string]string) (bool, error) {
	vs, ok := lq.filters["metadata"]
	if !ok || len(vs) == 0 {
		return true, nil
	}
	want, err := parseMetadataFilter(vs[0])
	if err != nil {
		return false, err
	}
	for k, v := range want {
		if md[k] != v {
			return false, nil
		}
	}
	return true, nil
}

// sortable is what paging needs to know about an item.
type sortable struct {
	id        string
	createdAt time.Time
	updatedAt time.Time
	fields    map[string]string
	size      int
	item      any
}

func markerKind(collection string) string {
	switch collection {
	case "volumes":
		return "Volume"
	case "snapshots":
		return "Snapshot"
	case "backups":
		return "Backup"
	case "messages":
		return "Message"
	}
	return "Marker"
}

// page sorts items (default created_at desc, id desc, as Cinder does), applies
// marker/offset/limit and returns the page plus the "<collection>_links" list.
func (lq *listQuery) page(q *req, items []sortable, collection string, detail bool) ([]any, []any, bool) {
	keys, dirs := lq.sortKeys, lq.sortDirs
	if len(keys) == 0 {
		keys, dirs = []string{"created_at"}, []string{"desc"}
	}
	keys = append(keys, "id")
	dirs = append(dirs, dirs[len(dirs)-1])
	sort.SliceStable(items, func(i, j int) bool {
		for n, k := range keys {
			c := compareField(items[i], items[j], k)
			if c == 0 {
				continue
			}
			if dirs[n] == "asc" {
				return c < 0
			}
			return c > 0
		}
		return false
	})
	start := 0
	if lq.marker != "" {
		found := false
		for i, it := range items {
			if it.id == lq.marker {
				start, found = i+1, true
				break
			}
		}
		if !found {
			// Cinder looks the marker up as a resource of the list's kind
			// and answers with that resource's not-found (checked on Zed).
			writeError(q.w, http.StatusNotFound, fmt.Sprintf("%s %s could not be found.", markerKind(collection), lq.marker))
			return nil, nil, false
		}
	}
	start += lq.offset
	if start > len(items) {
		start = len(items)
	}
	end := min(len(items), start+lq.limit)
	out := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, it.item)
	}
	var links []any
	if lq.limit > 0 && end-start == lq.limit {
		v := q.r.URL.Query()
		v.Set("marker", items[end-1].id)
		v.Set("limit", strconv.Itoa(lq.limit))
		v.Del("offset")
		path := collection
		if detail {
			path += "/detail"
		}
		links = []any{map[string]any{"rel": "next", "href": collectionBase(q) + path + "?" + v.Encode()}}
	}
	return out, links, true
}

// writePage answers a list request with one page of items as
// {"<collection>": [...], "<collection>_links": [...]} plus extra keys.
func (lq *listQuery) writePage(q *req, items []sortable, collection string, detail bool, extra map[string]any) {
	page, links, ok := lq.page(q, items, collection, detail)
	if !ok {
		return
	}
	resp := map[string]any{collection: page}
	if links != nil {
		resp[collection+"_links"] = links
	}
	for k, v := range extra {
		resp[k] = v
	}
	writeJSON(q.w, http.StatusOK, resp)
}

func collectionBase(q *req) string {
	return "http://" + q.r.Host + "/volume/v3/" + q.tok.ProjectID + "/"
}

func compareField(a, b sortable, k string) int {
	switch k {
	case "created_at":
		return a.createdAt.Compare(b.createdAt)
	case "updated_at":
		return a.updatedAt.Compare(b.updatedAt)
	case "id":
		return strings.Compare(a.id, b.id)
	case "size":
		return a.size - b.size
	default:
		return strings.Compare(a.fields[k], b.fields[k])
	}
}

// Quotas.

func (e *Emulator) quotaLocked(projectID string) quota {
	if qt, ok := e.st.Quotas[projectID]; ok {
		return *qt
	}
	return quota{Volumes: e.opts.QuotaVolumes, Gigabytes: e.opts.QuotaGigabytes, Snapshots: e.opts.QuotaSnapshots,
		Backups: e.opts.QuotaBackups, BackupGigabytes: 1000, PerVolumeGigabytes: -1}
}

type usage struct{ volumes, gigabytes, snapshots, backups, backupGigabytes int }

func (e *Emulator) usageLocked(projectID string) usage {
	var u usage
	for _, v := range e.st.Volumes {
		if v.ProjectID == projectID {
			u.volumes++
			u.gigabytes += v.Size
		}
	}
	for _, s := range e.st.Snapshots {
		if s.ProjectID == projectID {
			u.snapshots++
			u.gigabytes += s.Size
		}
	}
	for _, b := range e.st.Backups {
		if b.ProjectID == projectID {
			u.backups++
			u.backupGigabytes += b.Size
		}
	}
	return u
}

func overLimit(q *req, msg string) {
	// Cinder's OverLimit fault sets Retry-After: 0 beside the body's
	// retryAfter (checked on Zed).
	q.w.Header().Set("Retry-After", "0")
	writeJSON(q.w, http.StatusRequestEntityTooLarge, map[string]any{"overLimit": map[string]any{"code": 413, "message": msg, "retryAfter": "0"}})
}

// checkQuotaLocked answers 413 with Cinder's messages when adding count
// resources of kind ("volumes", "snapshots", "backups") and gb gigabytes would
// exceed the project's quota.
func (e *Emulator) checkQuotaLocked(q *req, projectID, kind string, gb int) bool {
	qt := e.quotaLocked(projectID)
	u := e.usageLocked(projectID)
	switch kind {
	case "volumes":
		if qt.Volumes >= 0 && u.volumes+1 > qt.Volumes {
			overLimit(q, fmt.Sprintf("VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota 'volumes'.", qt.Volumes))
			return false
		}
		if qt.PerVolumeGigabytes >= 0 && gb > qt.PerVolumeGigabytes {
			overLimit(q, fmt.Sprintf("VolumeSizeExceedsLimit: Requested volume size %dG is larger than maximum allowed limit %dG.", gb, qt.PerVolumeGigabytes))
			return false
		}
	case "snapshots":
		if qt.Snapshots >= 0 && u.snapshots+1 > qt.Snapshots {
			overLimit(q, fmt.Sprintf("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded", qt.Snapshots))
			return false
		}
	case "backups":
		if qt.Backups >= 0 && u.backups+1 > qt.Backups {
			overLimit(q, fmt.Sprintf("BackupLimitExceeded: Maximum number of backups allowed (%d) exceeded", qt.Backups))
			return false
		}
		if qt.BackupGigabytes >= 0 && u.backupGigabytes+gb > qt.BackupGigabytes {
			overLimit(q, fmt.Sprintf("VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", gb, qt.BackupGigabytes, u.backupGigabytes))
			return false
		}
		return true
	}
	if qt.Gigabytes >= 0 && u.gigabytes+gb > qt.Gigabytes {
		overLimit(q, fmt.Sprintf("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", gb, qt.Gigabytes, u.gigabytes))
		return false
	}
	return true
}

// addMessageLocked records a user message the way Cinder does when an
// asynchronous operation ends in error.
func (e *Emulator) addMessageLocked(projectID, resourceType, resourceID, requestID, action, actionText, detail, detailText string) {
	now := time.Now().UTC()
	id := newUUID()
	e.st.Messages[id] = &message{
		ID: id, EventID: fmt.Sprintf("VOLUME_%s_%s_%s", resourceType, action, detail),
		UserMessage: actionText + ":" + detailText, MessageLevel: "ERROR",
		ResourceType: resourceType, ResourceUUID: resourceID, RequestID: requestID, ProjectID: projectID,
		CreatedAt: now, GuaranteedUntil: now.Add(30 * 24 * time.Hour),
	}
}
