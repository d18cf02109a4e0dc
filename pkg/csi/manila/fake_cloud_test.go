package manila

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// fakeCloud is a small in-memory ShareCloud for unit tests. Everything it
// creates is ready at once unless a hook says otherwise; integration and
// sanity tests use the emulator instead.
type fakeCloud struct {
	mu        sync.Mutex
	next      int
	shares    map[string]*openstack.Share
	rules     map[string][]openstack.AccessRule // by share id
	snapshots map[string]*openstack.ShareSnapshot
	exports   func(s *openstack.Share) []openstack.ExportLocation
	features  openstack.ShareFeatures
	calls     []string

	// Hooks.
	createStatus  string // status a new share reaches ("" = available)
	createMessage string // its error message
	// extendLag: ExtendShare answers while the share is still available at
	// its old size, as real Manila does; the new size shows on a later poll.
	extendLag   bool
	pendingSize map[string]int
	ruleWait    func(r *openstack.AccessRule) // called inside WaitAccessRule
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{
		shares:    map[string]*openstack.Share{},
		rules:     map[string][]openstack.AccessRule{},
		snapshots: map[string]*openstack.ShareSnapshot{},
		features:  openstack.ShareFeatures{Microversion: "2.73", AccessMetadata: true, SchedulerHints: true, SnapshotMetadata: true, AccessKeyInList: true, TransitionalAccess: true},
		exports: func(s *openstack.Share) []openstack.ExportLocation {
			if s.Protocol == "CEPHFS" {
				return []openstack.ExportLocation{{Path: "10.0.0.1:6789,10.0.0.2:6789:/volumes/_nogroup/" + s.ID, Preferred: true}}
			}
			return []openstack.ExportLocation{
				{Path: "192.168.1.5:/admin/" + s.ID, IsAdminOnly: true},
				{Path: "10.0.0.5:/volumes/" + s.ID, Preferred: true},
			}
		},
	}
}

func (f *fakeCloud) id(prefix string) string {
	f.next++
	return fmt.Sprintf("%s-%04d", prefix, f.next)
}

func (f *fakeCloud) call(name string) { f.calls = append(f.calls, name) }

func notFound(op, id string) error {
	return &openstack.Error{Kind: openstack.KindNotFound, Op: op, Resource: id, StatusCode: 404}
}

func (f *fakeCloud) CreateShare(_ context.Context, o openstack.CreateShareOpts) (*openstack.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("CreateShare")
	s := &openstack.Share{ID: f.id("share"), Name: o.Name, Status: openstack.ShareCreating, SizeGiB: o.SizeGiB, Protocol: o.Protocol,
		ShareType: o.ShareType, AvailabilityZone: o.AvailabilityZone, SnapshotID: o.SnapshotID, Metadata: map[string]string{}}
	if s.AvailabilityZone == "" {
		s.AvailabilityZone = "nova"
	}
	for k, v := range o.Metadata {
		s.Metadata[k] = v
	}
	f.shares[s.ID] = s
	out := *s
	return &out, nil
}

func (f *fakeCloud) GetShare(_ context.Context, id string) (*openstack.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.shares[id]
	if !ok {
		return nil, notFound("share_get", id)
	}
	out := *s
	return &out, nil
}

func (f *fakeCloud) FindSharesByName(_ context.Context, name string, owner map[string]string) ([]openstack.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []openstack.Share
	for _, s := range f.sortedShares() {
		if s.Name == name && hasAll(s.Metadata, owner) {
			out = append(out, *s)
		}
	}
	return out, nil
}

func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeCloud) sortedShares() []*openstack.Share {
	var out []*openstack.Share
	for _, s := range f.shares {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fakeCloud) ListShares(_ context.Context, o openstack.ShareListOpts) (openstack.Page[openstack.Share], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var page openstack.Page[openstack.Share]
	started := o.Marker == ""
	for _, s := range f.sortedShares() {
		if !started {
			started = s.ID == o.Marker
			continue
		}
		if !hasAll(s.Metadata, o.Metadata) {
			continue
		}
		if o.Limit > 0 && len(page.Items) == o.Limit {
			page.NextMarker = page.Items[len(page.Items)-1].ID
			break
		}
		page.Items = append(page.Items, *s)
	}
	if !started {
		return page, &openstack.Error{Kind: openstack.KindBadRequest, Op: "share_list", Message: "marker not found"}
	}
	return page, nil
}

func (f *fakeCloud) DeleteShare(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DeleteShare")
	if _, ok := f.shares[id]; !ok {
		return notFound("share_delete", id)
	}
	for _, s := range f.snapshots {
		if s.ShareID == id {
			return &openstack.Error{Kind: openstack.KindForbidden, Op: "share_delete", StatusCode: 403, Message: "Invalid share: share has snapshots."}
		}
	}
	delete(f.shares, id)
	delete(f.rules, id)
	return nil
}

func (f *fakeCloud) ExtendShare(_ context.Context, id string, size int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("ExtendShare")
	s, ok := f.shares[id]
	if !ok {
		return notFound("share_extend", id)
	}
	if f.extendLag {
		if f.pendingSize == nil {
			f.pendingSize = map[string]int{}
		}
		f.pendingSize[id] = size
		return nil
	}
	s.SizeGiB = size
	return nil
}

func (f *fakeCloud) ShrinkShare(context.Context, string, int) error {
	panic("the driver never shrinks a share")
}

func (f *fakeCloud) ListExportLocations(_ context.Context, id string) ([]openstack.ExportLocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.shares[id]
	if !ok {
		return nil, notFound("export_locations", id)
	}
	return f.exports(s), nil
}

func (f *fakeCloud) SetShareMetadata(_ context.Context, id string, meta map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range meta {
		f.shares[id].Metadata[k] = v
	}
	return nil
}

func (f *fakeCloud) GrantAccess(_ context.Context, o openstack.GrantAccessOpts) (*openstack.AccessRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("GrantAccess " + o.AccessType + ":" + o.AccessTo + ":" + o.AccessLevel)
	for _, r := range f.rules[o.ShareID] {
		if r.AccessTo == o.AccessTo && r.AccessType == o.AccessType {
			return nil, &openstack.Error{Kind: openstack.KindBadRequest, Op: "allow_access", Message: "Share access " + o.AccessTo + " exists"}
		}
	}
	r := openstack.AccessRule{ID: f.id("rule"), ShareID: o.ShareID, AccessType: o.AccessType, AccessTo: o.AccessTo,
		AccessLevel: o.AccessLevel, State: openstack.AccessQueuedToApply, Metadata: o.Metadata}
	f.rules[o.ShareID] = append(f.rules[o.ShareID], r)
	return &r, nil
}

func (f *fakeCloud) ListAccessRules(_ context.Context, shareID string) ([]openstack.AccessRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]openstack.AccessRule(nil), f.rules[shareID]...), nil
}

func (f *fakeCloud) RevokeAccess(_ context.Context, shareID, accessID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("RevokeAccess " + accessID)
	rules := f.rules[shareID]
	for i, r := range rules {
		if r.ID == accessID {
			f.rules[shareID] = append(rules[:i:i], rules[i+1:]...)
			return nil
		}
	}
	return notFound("deny_access", accessID)
}

func (f *fakeCloud) CreateShareSnapshot(_ context.Context, o openstack.CreateShareSnapshotOpts) (*openstack.ShareSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("CreateShareSnapshot " + o.Name)
	share, ok := f.shares[o.ShareID]
	if !ok {
		return nil, notFound("snapshot_create", o.ShareID)
	}
	s := &openstack.ShareSnapshot{ID: f.id("snap"), Name: o.Name, ShareID: o.ShareID, SizeGiB: share.SizeGiB, ShareSize: share.SizeGiB, Status: openstack.ShareSnapshotCreating}
	f.snapshots[s.ID] = s
	out := *s
	return &out, nil
}

func (f *fakeCloud) GetShareSnapshot(_ context.Context, id string) (*openstack.ShareSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.snapshots[id]
	if !ok {
		return nil, notFound("snapshot_get", id)
	}
	out := *s
	return &out, nil
}

func (f *fakeCloud) FindShareSnapshotsByName(_ context.Context, name string) ([]openstack.ShareSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []openstack.ShareSnapshot
	for _, s := range f.snapshots {
		if s.Name == name {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (f *fakeCloud) ListShareSnapshots(_ context.Context, o openstack.ShareListOpts) (openstack.Page[openstack.ShareSnapshot], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var page openstack.Page[openstack.ShareSnapshot]
	for _, s := range f.snapshots {
		if o.ShareID == "" || s.ShareID == o.ShareID {
			page.Items = append(page.Items, *s)
		}
	}
	sort.Slice(page.Items, func(i, j int) bool { return page.Items[i].ID < page.Items[j].ID })
	return page, nil
}

func (f *fakeCloud) DeleteShareSnapshot(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DeleteShareSnapshot " + f.snapshotName(id))
	if _, ok := f.snapshots[id]; !ok {
		return notFound("snapshot_delete", id)
	}
	delete(f.snapshots, id)
	return nil
}

func (f *fakeCloud) snapshotName(id string) string {
	if s, ok := f.snapshots[id]; ok {
		return s.Name
	}
	return id
}

func (f *fakeCloud) GetShareType(_ context.Context, name string) (*openstack.ShareType, error) {
	return &openstack.ShareType{ID: name, Name: name, SnapshotSupport: true, CreateShareFromSnapshotSupport: true}, nil
}

func (f *fakeCloud) ListShareAvailabilityZones(context.Context) ([]string, error) {
	return []string{"nova"}, nil
}

func (f *fakeCloud) GetShareQuota(context.Context) (*openstack.ShareQuota, error) {
	return &openstack.ShareQuota{Gigabytes: openstack.QuotaUsage{Limit: 100, InUse: 10, Reserved: 5}, Shares: openstack.QuotaUsage{Limit: 10, InUse: 1}}, nil
}

func (f *fakeCloud) LatestShareMessage(_ context.Context, id string) (*openstack.ShareMessage, error) {
	if f.createMessage == "" {
		return nil, nil
	}
	return &openstack.ShareMessage{ResourceID: id, UserMessage: f.createMessage}, nil
}

func (f *fakeCloud) WaitShare(_ context.Context, id string, done func(*openstack.Share) bool) (*openstack.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.shares[id]
	if !ok {
		return nil, notFound("share_get", id)
	}
	if s.Status == openstack.ShareCreating || s.Status == openstack.ShareCreatingFromSnapshot || s.Status == openstack.ShareExtending {
		s.Status = openstack.ShareAvailable
		if f.createStatus != "" {
			s.Status = f.createStatus
		}
	}
	out := *s
	if s.Status == openstack.ShareError {
		return &out, &openstack.Error{Kind: openstack.KindErrorState, Op: "share_wait", Resource: id, Message: f.createMessage}
	}
	if !done(&out) {
		// The next poll: a lagging extend has landed.
		if size, ok := f.pendingSize[id]; ok {
			s.SizeGiB = size
			delete(f.pendingSize, id)
			out = *s
		}
		if !done(&out) {
			return &out, &openstack.Error{Kind: openstack.KindTimeout, Op: "share_wait", Resource: id}
		}
	}
	return &out, nil
}

func (f *fakeCloud) WaitShareGone(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.shares[id]; ok {
		return &openstack.Error{Kind: openstack.KindTimeout, Op: "share_wait_gone", Resource: id}
	}
	return nil
}

func (f *fakeCloud) WaitShareSnapshot(_ context.Context, id string, _ func(*openstack.ShareSnapshot) bool) (*openstack.ShareSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.snapshots[id]
	if !ok {
		return nil, notFound("snapshot_get", id)
	}
	if s.Status == openstack.ShareSnapshotCreating {
		s.Status = openstack.ShareSnapshotAvailable
	}
	out := *s
	return &out, nil
}

func (f *fakeCloud) WaitShareSnapshotGone(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snapshots[id]; ok {
		return &openstack.Error{Kind: openstack.KindTimeout, Op: "snapshot_wait_gone", Resource: id}
	}
	return nil
}

func (f *fakeCloud) WaitAccessRule(_ context.Context, shareID, accessID string) (*openstack.AccessRule, error) {
	f.mu.Lock()
	var rule *openstack.AccessRule
	for i := range f.rules[shareID] {
		if f.rules[shareID][i].ID == accessID {
			rule = &f.rules[shareID][i]
		}
	}
	if rule == nil {
		f.mu.Unlock()
		return nil, notFound("access_get", accessID)
	}
	hook := f.ruleWait
	snapshot := *rule
	f.mu.Unlock()
	if hook != nil {
		hook(&snapshot)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rule.State = openstack.AccessActive
	if rule.AccessType == openstack.AccessTypeCephx {
		rule.AccessKey = "AQD-secret-key-of-" + rule.AccessTo
	}
	out := *rule
	return &out, nil
}

func (f *fakeCloud) WaitAccessRuleGone(_ context.Context, shareID, accessID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules[shareID] {
		if r.ID == accessID {
			return &openstack.Error{Kind: openstack.KindTimeout, Op: "access_wait_gone", Resource: accessID}
		}
	}
	return nil
}

func (f *fakeCloud) ShareFeatures(context.Context) (openstack.ShareFeatures, error) {
	return f.features, nil
}

// fakeClouds resolves every request to one fakeCloud.
type fakeClouds struct{ c *fakeCloud }

func (fc fakeClouds) ForSecrets(context.Context, map[string]string) (openstack.ShareCloud, error) {
	return fc.c, nil
}

// fakeKeys is an in-memory KeyStore.
type fakeKeys struct {
	mu      sync.Mutex
	secrets map[string]map[string]string
}

func (k *fakeKeys) Put(_ context.Context, ns, name string, data map[string]string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.secrets == nil {
		k.secrets = map[string]map[string]string{}
	}
	k.secrets[ns+"/"+name] = data
	return nil
}

func (k *fakeKeys) Delete(_ context.Context, ns, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.secrets, ns+"/"+name)
	return nil
}

func (k *fakeKeys) DefaultNamespace() string { return "kube-system" }
