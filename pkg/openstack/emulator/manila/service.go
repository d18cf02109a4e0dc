// Package manila emulates OpenStack Manila (shared file systems v2, as Zed
// serves it: microversions 2.0-2.73) inside the emulator, behind package
// host's service contract: share types with extra specs, shares with their
// asynchronous states, export locations, access rules (ip and cephx, with
// the queued_to_apply -> applying -> active sequence and the late
// access_key), snapshots, shares from snapshots, extend and shrink, share
// networks, availability zones, quotas and limits, user messages and
// metadata. Every share is a real directory under the emulator's data
// directory, so node tests can mount something real.
//
// Behaviour and messages follow what the openstack-rig's Manila Zed
// answers (tests/e2e/openstack/diff compares them step by step).
package manila

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// ShareTypeSpec is one share type the emulator offers.
type ShareTypeSpec struct {
	Name string
	// Protocol the type's backend serves: "NFS" or "CEPHFS".
	Protocol string
	// ExtraSpecs; driver_handles_share_servers defaults to "False",
	// snapshot_support and create_share_from_snapshot_support to "True".
	ExtraSpecs map[string]string
	Default    bool
}

// Options configure the Manila service. Zero values take the defaults.
type Options struct {
	Disabled bool
	// MaxMicroversion defaults to "2.73" (Zed).
	MaxMicroversion string
	// ShareTypes default to the rig's: "cephfstype" (native CephFS, the
	// default type) and "cephfsnfstype" (CephFS through NFS-Ganesha).
	ShareTypes []ShareTypeSpec
	// EnabledProtocols default to CEPHFS and NFS, as manila-up.sh sets
	// enabled_share_protocols.
	EnabledProtocols []string
	// NFSHost is the server part of NFS export paths (default 127.0.0.1).
	NFSHost string
	// NFSListen, when set ("127.0.0.1:0"), serves every NFS share's
	// directory as a real NFSv3 export on that address (nfs.go); NFSAddr
	// returns the port. NFSHost stays the export locations' host: the
	// address a node reaches the listener by.
	NFSListen string
	// CephMonitors is the monitor list of CephFS export paths (default
	// 127.0.0.1:6789).
	CephMonitors string
	// Quota defaults per project: Manila's (50 shares, 1000 GiB, 50
	// snapshots, 1000 snapshot GiB, 10 share networks).
	Quota Quota
}

// The rig's type ids, so persisted state and test expectations are stable.
const (
	CephFSTypeID    = "b9013f35-0bbc-4640-a6d7-f27285a60604"
	CephFSNFSTypeID = "8ee7ddb7-ea1e-4209-8f68-0033e3e9f01f"
)

// Service is the emulated Manila.
type Service struct {
	h    host.Host
	opts Options
	max  host.Microversion

	mu sync.Mutex // guards st
	st *state

	nfs *nfsServer // the NFS export, when Options.NFSListen is set
}

var _ host.Service = (*Service)(nil)

const name = "share"

// New builds the service on h.
func New(h host.Host, opts Options) (*Service, error) {
	if opts.MaxMicroversion == "" {
		opts.MaxMicroversion = "2.73"
	}
	if len(opts.EnabledProtocols) == 0 {
		opts.EnabledProtocols = []string{"CEPHFS", "NFS"}
	}
	if opts.NFSHost == "" {
		opts.NFSHost = "127.0.0.1"
	}
	if opts.CephMonitors == "" {
		opts.CephMonitors = "127.0.0.1:6789"
	}
	if opts.Quota == (Quota{}) {
		opts.Quota = Quota{Shares: 50, Gigabytes: 1000, Snapshots: 50, SnapshotGigabytes: 1000, ShareNetworks: 10, PerShareGigabytes: -1}
	}
	if len(opts.ShareTypes) == 0 {
		opts.ShareTypes = []ShareTypeSpec{
			{Name: "cephfstype", Protocol: "CEPHFS", Default: true, ExtraSpecs: map[string]string{"share_backend_name": "CEPHFSNATIVE"}},
			{Name: "cephfsnfstype", Protocol: "NFS", ExtraSpecs: map[string]string{"share_backend_name": "CEPHFSNFS"}},
		}
	}
	s := &Service{h: h, opts: opts, st: newState()}
	var err error
	if s.max, err = host.ParseMicroversion(opts.MaxMicroversion); err != nil || s.max.Major != 2 {
		return nil, fmt.Errorf("manila: bad MaxMicroversion %q", opts.MaxMicroversion)
	}
	for _, ts := range opts.ShareTypes {
		id := ""
		switch ts.Name {
		case "cephfstype":
			id = CephFSTypeID
		case "cephfsnfstype":
			id = CephFSNFSTypeID
		}
		s.addTypeLocked(id, ts)
	}
	for _, az := range h.AvailabilityZones() {
		s.st.AZIDs[az] = host.NewUUID()
	}
	if opts.NFSListen != "" {
		if err := s.startNFS(opts.NFSListen); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Service) addTypeLocked(id string, ts ShareTypeSpec) *shareType {
	specs := map[string]string{"driver_handles_share_servers": "False", "snapshot_support": "True", "create_share_from_snapshot_support": "True"}
	for k, v := range ts.ExtraSpecs {
		specs[k] = v
	}
	if t := s.st.typeByNameOrID(ts.Name); t != nil {
		t.ExtraSpecs, t.Protocol = specs, ts.Protocol
		return t
	}
	if id == "" {
		id = host.NewUUID()
	}
	if ts.Default {
		for _, t := range s.st.Types {
			t.IsDefault = false
		}
	}
	t := &shareType{ID: id, Name: ts.Name, ExtraSpecs: specs, IsPublic: true, IsDefault: ts.Default, Protocol: ts.Protocol}
	s.st.Types[id] = t
	return t
}

// AddShareType adds a public share type (or replaces its extra specs and
// protocol) and returns its id.
func (s *Service) AddShareType(ts ShareTypeSpec) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.addTypeLocked("", ts).ID
	s.h.MarkDirty()
	return id
}

// Name implements host.Service.
func (s *Service) Name() string { return name }

// Version implements host.Service: X-OpenStack-Manila-API-Version, 2.0 when
// absent, no "latest", and Zed's uninterpolated refusals (checked on the
// rig: 400 badRequest and 406 computeFault).
func (s *Service) Version() host.VersionRule {
	return host.VersionRule{
		Min: host.Microversion{Major: 2, Minor: 0}, Max: s.max,
		Legacy:   "X-OpenStack-Manila-API-Version",
		NoLatest: true,
		Echo: func(h http.Header, mv host.Microversion) {
			h.Set("X-OpenStack-Manila-API-Version", mv.String())
			h.Set("Vary", "X-OpenStack-Manila-API-Version")
		},
		Refuse: func(w http.ResponseWriter, badFormat bool, requested string) {
			if badFormat {
				host.WriteFault(w, http.StatusBadRequest, "API Version String %(version)s is of invalid format. Must be of format MajorNum.MinorNum.")
				return
			}
			// Zed echoes the refused version (and no Vary).
			w.Header().Set("X-OpenStack-Manila-API-Version", requested)
			host.WriteJSON(w, http.StatusNotAcceptable, map[string]any{"computeFault": map[string]any{"code": 406,
				"message": "Version %(req_ver)s is not supported by the API. Minimum is %(min_ver)s and maximum is %(max_ver)s."}})
		},
	}
}

// TopCollections implements host.Service.
func (s *Service) TopCollections() map[string]bool {
	return map[string]bool{
		"shares": true, "snapshots": true, "types": true, "share-access-rules": true, "availability-zones": true,
		"os-availability-zone": true, "limits": true, "quota-sets": true, "os-quota-sets": true, "messages": true,
		"share-networks": true, "extensions": true, "scheduler-stats": true,
	}
}

// Catalog implements host.Service: both types the rig registers.
func (s *Service) Catalog(base, projectID string) []host.CatalogEntry {
	url := base + "/share/v2/" + projectID
	return []host.CatalogEntry{
		{ID: "4f6c6a1a3f3b4f0e8f9a1b2c3d4e5f64", Type: "sharev2", Name: "manilav2", URL: url},
		{ID: "5f6c6a1a3f3b4f0e8f9a1b2c3d4e5f65", Type: "shared-file-system", Name: "manila", URL: url},
	}
}

// Operation names for latency settings.
const (
	OpShareCreate    = "share_create"
	OpShareDelete    = "share_delete"
	OpShareExtend    = "share_extend"
	OpShareShrink    = "share_shrink"
	OpShareRestore   = "share_restore" // share from snapshot
	OpSnapshotCreate = "share_snapshot_create"
	OpSnapshotDelete = "share_snapshot_delete"
	OpAccessAllow    = "access_allow" // until the rule is active
	OpAccessKey      = "access_key"   // until a cephx rule has its key
	OpAccessDeny     = "access_deny"
)

// Latency implements host.Service. "realistic" (and "bench", which has no
// Manila figures of its own) is Manila Zed on the openstack-rig, REST with
// 0.1 s polling (tools/openstack-rig/manila/README.md, manila_api_timings.py,
// two runs): create 0.92/1.08 s, access to active 0.96/1.15 s with the key
// ~0.63 s after allow_access, snapshot 0.42/0.83 s, extend 0.28/0.44 s,
// deny 1.33/5.08 s, deletes 1-2 s for three resources. Share from snapshot
// took 10.5/18.2 s, bounded by the share manager's periodic task (10 s on
// the rig, 60 s by default): the realistic profile uses the rig's 10 s.
// "fast" is zero everywhere (states still move asynchronously).
func (s *Service) Latency(profile string) map[string]time.Duration {
	ops := []string{OpShareCreate, OpShareDelete, OpShareExtend, OpShareShrink, OpShareRestore, OpSnapshotCreate,
		OpSnapshotDelete, OpAccessAllow, OpAccessKey, OpAccessDeny}
	m := map[string]time.Duration{}
	for _, op := range ops {
		m[op] = 0
	}
	if profile == "fast" {
		return m
	}
	m[OpShareCreate] = time.Second
	m[OpShareDelete] = 700 * time.Millisecond
	m[OpShareExtend] = 350 * time.Millisecond
	m[OpShareShrink] = 300 * time.Millisecond
	m[OpShareRestore] = 10 * time.Second
	m[OpSnapshotCreate] = 600 * time.Millisecond
	m[OpSnapshotDelete] = 400 * time.Millisecond
	m[OpAccessAllow] = 1050 * time.Millisecond
	m[OpAccessKey] = 630 * time.Millisecond
	m[OpAccessDeny] = 1300 * time.Millisecond
	return m
}

// FaultsChanged implements host.Service: rules held by StuckAccessRules
// resume once it is cleared.
func (s *Service) FaultsChanged(f host.Faults) {
	if f.StuckAccessRules {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.st.Access {
		if r.Held {
			r.Held = false
			s.applyRuleLater(r.ID)
		}
	}
}

// SaveState implements host.Service.
func (s *Service) SaveState() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.MarshalIndent(s.st, "", " ")
}

// LoadState implements host.Service; operations in flight complete at once,
// since their timers died with the previous process.
func (s *Service) LoadState(b []byte) error {
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	for _, az := range s.h.AvailabilityZones() {
		if st.AZIDs[az] == "" {
			st.AZIDs[az] = host.NewUUID() // a zone added since the state was saved
		}
	}
	for id, sh := range st.Shares {
		switch sh.Status {
		case "creating", "creating_from_snapshot":
			s.finishCreateLocked(sh)
		case "extending", "shrinking":
			sh.Status = "available"
		case "deleting":
			s.removeShareLocked(id)
		}
	}
	for id, sn := range st.Snapshots {
		switch sn.Status {
		case "creating":
			sn.Status = "available"
		case "deleting":
			s.removeSnapshotLocked(id)
		}
	}
	for id, r := range st.Access {
		switch r.State {
		case "queued_to_apply", "applying":
			if !r.Held {
				s.activateRuleLocked(r)
			}
		case "queued_to_deny", "denying":
			delete(st.Access, id)
		}
	}
	return nil
}

// Close implements host.Service; Later's goroutines end with the host.
func (s *Service) Close() {
	if s.nfs != nil {
		s.nfs.close()
	}
}

// Routes implements host.Service.
func (s *Service) Routes() []host.Route {
	var rs []host.Route
	add := func(method, tmpl string, h host.Handler) {
		rs = append(rs, host.Route{Method: method, Template: "/share/v2/{project_id}" + tmpl, H: h})
	}
	rs = append(rs,
		host.Route{Method: "GET", Template: "/share", Public: true, H: s.versions},
		host.Route{Method: "GET", Template: "/share/v2", Public: true, H: s.v2Version})
	s.shareRoutes(add)
	s.accessRoutes(add)
	s.snapshotRoutes(add)
	s.miscRoutes(add)
	return rs
}

func (s *Service) versionDoc(base, id string) map[string]any {
	doc := map[string]any{
		"id": id, "status": "CURRENT", "version": s.max.String(), "min_version": "2.0", "updated": "2015-08-27T11:33:21Z",
		"links": []any{map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": base + "/share/v2/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}},
	}
	if id == "v1.0" {
		doc["status"], doc["version"], doc["min_version"] = "DEPRECATED", "", ""
		doc["links"] = []any{doc["links"].([]any)[0], map[string]any{"rel": "self", "href": base + "/share/v1/"}}
	}
	return doc
}

func (s *Service) versions(q *host.Request) {
	base := s.h.BaseURL(q.R)
	host.WriteJSON(q.W, http.StatusMultipleChoices, map[string]any{"versions": []any{s.versionDoc(base, "v1.0"), s.versionDoc(base, "v2.0")}})
}

func (s *Service) v2Version(q *host.Request) {
	q.W.Header().Set("X-OpenStack-Manila-API-Version", "2.0")
	q.W.Header().Set("Vary", "X-OpenStack-Manila-API-Version")
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"versions": []any{s.versionDoc(s.h.BaseURL(q.R), "v2.0")}})
}

// notFound is Manila's bare 404 for an absent (or another project's) share
// or snapshot, and for a method the microversion does not offer.
func notFound(q *host.Request) {
	host.WriteFault(q.W, http.StatusNotFound, "The resource could not be found.")
}

func badRequest(q *host.Request, msg string) { host.WriteFault(q.W, http.StatusBadRequest, msg) }

// overLimit is Manila's 413 (with Retry-After 0 as the rig answers).
func overLimit(q *host.Request, msg string) {
	q.W.Header().Set("Retry-After", "0")
	host.WriteJSON(q.W, http.StatusRequestEntityTooLarge, map[string]any{"overLimit": map[string]any{"code": 413, "message": msg, "retryAfter": "0"}})
}

// links are Manila's self and bookmark links; the project id appears only
// when the request's URL had it (2.60 allows URLs without).
func (s *Service) links(q *host.Request, collection, id string) []any {
	base := s.h.BaseURL(q.R)
	pid := ""
	if q.P("project_id") != "" {
		pid = q.ProjectID + "/"
	}
	return []any{
		map[string]any{"rel": "self", "href": base + "/share/v2/" + pid + collection + "/" + id},
		map[string]any{"rel": "bookmark", "href": base + "/share/" + pid + collection + "/" + id},
	}
}

// collectionURL is a collection's URL for a next link.
func (s *Service) collectionURL(q *host.Request, collection string) string {
	pid := ""
	if q.P("project_id") != "" {
		pid = q.ProjectID + "/"
	}
	return s.h.BaseURL(q.R) + "/share/v2/" + pid + collection
}

func (s *Service) sharesRoot() string    { return filepath.Join(s.h.DataDir(), "manila", "shares") }
func (s *Service) snapshotsRoot() string { return filepath.Join(s.h.DataDir(), "manila", "snapshots") }

func sortByCreated[T any](items []T, key func(T) (time.Time, string)) {
	sort.SliceStable(items, func(i, j int) bool {
		ti, ii := key(items[i])
		tj, ij := key(items[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return ii < ij
	})
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
