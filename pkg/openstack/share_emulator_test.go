package openstack

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

// The Manila cloud layer through real HTTP against the emulator's Manila.

func newShareCloud(t *testing.T, conf string, rec *recorder) *cloud {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	opts := Options{ReloadInterval: -1}
	if rec != nil {
		opts.Observer = rec
	}
	set, err := NewShareClouds(ctx, []string{writeConf(t, conf)}, opts)
	if err != nil {
		t.Fatalf("NewShareClouds: %v", err)
	}
	sc, err := set.ForSecrets(ctx, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	return sc.(*cloud)
}

func shareAvailable(s *Share) bool { return s.Status == ShareAvailable }

func mustShare(ctx context.Context, t *testing.T, c *cloud, o CreateShareOpts) *Share {
	t.Helper()
	s, err := c.CreateShare(ctx, o)
	if err != nil {
		t.Fatalf("CreateShare: %v", err)
	}
	if s, err = c.WaitShare(ctx, s.ID, shareAvailable); err != nil {
		t.Fatalf("WaitShare: %v", err)
	}
	return s
}

func TestShareLifeOnEmulatorNeedsNoCinder(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	c := newShareCloud(t, e.CloudConf("Global", "demo"), rec)
	ctx := ctxTimeout(t, 60*time.Second)
	meta := map[string]string{MetaManilaCluster: "k1"}
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "life", Protocol: "NFS", SizeGiB: 1, ShareType: "cephfsnfstype", Metadata: meta})
	if !e.Manila().AddExportLocation(s.ID, "10.9.9.9:/admin/path", false, true) ||
		!e.Manila().AddExportLocation(s.ID, "10.1.1.1:/preferred/path", true, false) {
		t.Fatal("AddExportLocation")
	}
	locs, err := c.ListExportLocations(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var pref, admin bool
	for _, l := range locs {
		pref = pref || l.Preferred && l.Path == "10.1.1.1:/preferred/path"
		admin = admin || l.IsAdminOnly
	}
	if !pref {
		t.Errorf("export locations lack the preferred one: %+v", locs)
	}
	t.Logf("export locations as the demo user sees them (admin-only shown: %v): %+v", admin, locs)

	r, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeIP, AccessTo: "10.0.0.7", AccessLevel: "ro",
		Metadata: map[string]string{"manila.csi.openstack.org/node": "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.WaitAccessRule(ctx, s.ID, r.ID); err != nil || got.AccessLevel != "ro" || got.Metadata["manila.csi.openstack.org/node"] != "n1" {
		t.Fatalf("WaitAccessRule: %+v %v", got, err)
	}
	if err := c.ExtendShare(ctx, s.ID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitShare(ctx, s.ID, func(s *Share) bool { return shareAvailable(s) && s.SizeGiB == 3 }); err != nil {
		t.Fatal(err)
	}
	if err := c.ShrinkShare(ctx, s.ID, 4); KindOf(err) != KindBadRequest {
		t.Errorf("shrink to a larger size: want KindBadRequest, got %v", err)
	}
	if err := c.RevokeAccess(ctx, s.ID, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitAccessRuleGone(ctx, s.ID, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteShare(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitShareGone(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for k := range rec.requests {
		if strings.HasPrefix(k, "volumev3 ") || strings.HasPrefix(k, "compute ") {
			t.Errorf("the Manila cloud asked Cinder or Nova: %s", k)
		}
	}
	for _, op := range []string{"share_create", "share_export_locations", "share_access_allow", "share_access_poll",
		"share_extend", "share_shrink", "share_access_deny", "share_delete", "share_version_get"} {
		if rec.requests["sharev2 "+op] == 0 {
			t.Errorf("no sharev2 %s reported (saw %v)", op, rec.requests)
		}
	}
}

func TestCreateShareAfterLostAnswerAdoptsInsteadOfDuplicating(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	p := lostAnswerProxy(t, e, http.MethodPost, "/shares", 1)
	c := newShareCloud(t, confVia(e, p.URL), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	meta := map[string]string{MetaManilaCluster: "k1"}
	s, err := c.CreateShare(ctx, CreateShareOpts{Name: "lost", Protocol: "CEPHFS", SizeGiB: 1, Metadata: meta})
	if err != nil {
		t.Fatalf("a create whose answer was a 500 after Manila acted: %v", err)
	}
	all, err := c.listAllShares(ctx, "test", ShareListOpts{})
	if err != nil || len(all) != 1 || all[0].ID != s.ID {
		t.Fatalf("want exactly the adopted share %s, Manila holds %+v (%v)", s.ID, all, err)
	}
	if _, err := c.WaitShare(ctx, s.ID, shareAvailable); err != nil {
		t.Fatal(err)
	}

	// A rule, a snapshot and an extend whose answers were lost converge too.
	pa := lostAnswerProxy(t, e, http.MethodPost, "/action", 1)
	ca := newShareCloud(t, confVia(e, pa.URL), nil)
	r, err := ca.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeCephx, AccessTo: "alice"})
	if err != nil {
		t.Fatalf("grant whose answer was lost: %v", err)
	}
	if rules := e.Manila().AccessRules(s.ID); len(rules) != 1 || rules[0].ID != r.ID {
		t.Fatalf("want exactly the adopted rule %s, Manila holds %+v", r.ID, rules)
	}
	ps := lostAnswerProxy(t, e, http.MethodPost, "/snapshots", 1)
	cs := newShareCloud(t, confVia(e, ps.URL), nil)
	snap, err := cs.CreateShareSnapshot(ctx, CreateShareSnapshotOpts{Name: "lost-snap", ShareID: s.ID})
	if err != nil {
		t.Fatalf("snapshot whose answer was lost: %v", err)
	}
	if snaps, _ := cs.listAllShareSnapshots(ctx, "test", ShareListOpts{}); len(snaps) != 1 || snaps[0].ID != snap.ID {
		t.Fatalf("want exactly the adopted snapshot %s, Manila holds %+v", snap.ID, snaps)
	}
	pe := lostAnswerProxy(t, e, http.MethodPost, "/action", 1)
	ce := newShareCloud(t, confVia(e, pe.URL), nil)
	if err := ce.ExtendShare(ctx, s.ID, 2); err != nil {
		t.Fatalf("extend whose answer was lost: %v", err)
	}
}

// TestWaitAccessRuleWaitsWhileQueued is the reference's #3000: a rule held
// in queued_to_apply (no key) keeps the wait going; on the deadline it is
// KindTimeout with the rule as last seen; released, the wait ends with the
// key, which the allow answer never carries.
func TestWaitAccessRuleWaitsWhileQueued(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "held", Protocol: "CEPHFS", SizeGiB: 1})
	e.SetFaults(emulator.Faults{StuckAccessRules: true})
	r, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeCephx, AccessTo: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if r.AccessKey != "" {
		t.Error("the allow answer's key must not be used")
	}
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	got, err := c.WaitAccessRule(short, s.ID, r.ID)
	cancel()
	if KindOf(err) != KindTimeout || !strings.Contains(err.Error(), "queued_to_apply") {
		t.Fatalf("held rule: want KindTimeout naming queued_to_apply, got %v", err)
	}
	if got == nil || got.State != AccessQueuedToApply || got.AccessKey != "" {
		t.Errorf("last observed rule: %+v", got)
	}
	e.SetFaults(emulator.Faults{})
	got, err = c.WaitAccessRule(ctx, s.ID, r.ID)
	if err != nil || got.State != AccessActive || got.AccessKey == "" {
		t.Fatalf("released rule: state %v key present %v, %v", got.State, got.AccessKey != "", err)
	}
}

// TestOneRuleListServesEveryWaiterOfAShare: eight rules of one share
// waited for at once are answered by one listing per poll.
func TestOneRuleListServesEveryWaiterOfAShare(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	c := newShareCloud(t, e.CloudConf("Global", "demo"), rec)
	ctx := ctxTimeout(t, 60*time.Second)
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "many", Protocol: "NFS", SizeGiB: 1, ShareType: "cephfsnfstype"})
	e.SetFaults(emulator.Faults{StuckAccessRules: true})
	var ids []string
	for i := 0; i < 8; i++ {
		r, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeIP, AccessTo: "10.0.1." + string(rune('1'+i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.WaitAccessRule(ctx, s.ID, id)
		}()
	}
	for c.sharePolls.access.Fetches() < 3 {
		time.Sleep(10 * time.Millisecond) // let the held waiters poll a few times
	}
	e.SetFaults(emulator.Faults{})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rule %d: %v", i, err)
		}
	}
	polls := rec.count(func(r *recorder) int { return r.requests["sharev2 share_access_poll"] })
	fetches := c.sharePolls.access.Fetches()
	t.Logf("8 waiters on one share's rules: %d poller fetches, %d rule listings", fetches, polls)
	if polls != fetches {
		t.Errorf("%d rule listings for %d poller fetches: each fetch should list the share once for all 8 waiters", polls, fetches)
	}
}

func TestShareErrorCarriesManilaMessageAndStillDeletes(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	e.SetFaults(emulator.Faults{ShareErrorRate: 1})
	s, err := c.CreateShare(ctx, CreateShareOpts{Name: "bad", Protocol: "CEPHFS", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{})
	got, err := c.WaitShare(ctx, s.ID, shareAvailable)
	if KindOf(err) != KindErrorState || got == nil || got.Status != ShareError {
		t.Fatalf("want KindErrorState with the share in error, got %+v %v", got, err)
	}
	m, merr := c.LatestShareMessage(ctx, s.ID)
	if merr != nil || m == nil || !strings.Contains(err.Error(), m.UserMessage) {
		t.Errorf("the error should carry Manila's user message %+v: %v (%v)", m, err, merr)
	}
	if err := c.DeleteShare(ctx, s.ID); err != nil {
		t.Fatalf("DeleteShare of a share in error: %v", err)
	}
	if err := c.WaitShareGone(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteShare(ctx, s.ID); !IsNotFound(err) {
		t.Errorf("a second delete: want KindNotFound, got %v", err)
	}
}

func TestDeleteShareWithSnapshotIsConflict(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "snapped", Protocol: "CEPHFS", SizeGiB: 1})
	snap, err := c.CreateShareSnapshot(ctx, CreateShareSnapshotOpts{Name: "snap", ShareID: s.ID, Metadata: map[string]string{MetaManilaCluster: "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitShareSnapshot(ctx, snap.ID, func(s *ShareSnapshot) bool { return s.Status == ShareSnapshotAvailable }); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteShare(ctx, s.ID); KindOf(err) != KindConflict {
		t.Errorf("delete with a snapshot: want KindConflict, got %v", err)
	}
	p, err := c.ListShareSnapshots(ctx, ShareListOpts{ShareID: s.ID, Metadata: map[string]string{MetaManilaCluster: "k1"}})
	if err != nil || len(p.Items) != 1 {
		t.Errorf("ListShareSnapshots by share and metadata: %+v %v", p, err)
	}
	if err := c.DeleteShareSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitShareSnapshotGone(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteShare(ctx, s.ID); err != nil {
		t.Errorf("delete after the snapshot went: %v", err)
	}
}

func TestShareMicroversionsOfOlderClouds(t *testing.T) {
	t.Run("2.40: access list by action, no rule metadata", func(t *testing.T) {
		e := startEmulator(t, emulator.Options{Manila: manila.Options{MaxMicroversion: "2.40"}})
		rec := newRecorder()
		c := newShareCloud(t, e.CloudConf("Global", "demo"), rec)
		ctx := ctxTimeout(t, 60*time.Second)
		f, err := c.ShareFeatures(ctx)
		if err != nil || f.Microversion != "2.40" || f.AccessMetadata || f.SchedulerHints {
			t.Fatalf("features: %+v %v", f, err)
		}
		s := mustShare(ctx, t, c, CreateShareOpts{Name: "old", Protocol: "CEPHFS", SizeGiB: 1})
		if _, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeCephx, AccessTo: "x",
			Metadata: map[string]string{"k": "v"}}); KindOf(err) != KindConflict || !strings.Contains(err.Error(), "2.45") {
			t.Errorf("rule metadata below 2.45: want KindConflict naming 2.45, got %v", err)
		}
		if _, err := c.CreateShare(ctx, CreateShareOpts{Name: "hinted", Protocol: "CEPHFS", SizeGiB: 1,
			SameHost: []string{s.ID}}); KindOf(err) != KindConflict || !strings.Contains(err.Error(), "2.65") {
			t.Errorf("hints below 2.65: want KindConflict naming 2.65, got %v", err)
		}
		r, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeCephx, AccessTo: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.WaitAccessRule(ctx, s.ID, r.ID); err != nil || got.AccessKey == "" {
			t.Fatalf("WaitAccessRule through the access_list action: %+v %v", got, err)
		}
	})
	t.Run("2.30: refused", func(t *testing.T) {
		e := startEmulator(t, emulator.Options{Manila: manila.Options{MaxMicroversion: "2.30"}})
		ctx := ctxTimeout(t, 30*time.Second)
		_, err := NewShareClouds(ctx, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
		if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "2.37") {
			t.Errorf("want KindConfig naming 2.37, got %v", err)
		}
	})
}

func TestShareListPagesAndTypes(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	meta := map[string]string{MetaManilaCluster: "k1"}
	for _, n := range []string{"a", "b", "c"} {
		mustShare(ctx, t, c, CreateShareOpts{Name: n, Protocol: "CEPHFS", SizeGiB: 1, Metadata: meta})
	}
	mustShare(ctx, t, c, CreateShareOpts{Name: "foreign", Protocol: "CEPHFS", SizeGiB: 1})
	seen := map[string]bool{}
	o := ShareListOpts{Metadata: meta, Limit: 2}
	for pages := 0; pages < 5; pages++ {
		p, err := c.ListShares(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Items {
			seen[s.Name] = true
		}
		if p.NextMarker == "" {
			break
		}
		o.Marker = p.NextMarker
	}
	if len(seen) != 3 || seen["foreign"] {
		t.Errorf("pages by 2 should give a, b, c only: %v", seen)
	}
	st, err := c.GetShareType(ctx, "cephfstype")
	if err != nil || st.ID != manila.CephFSTypeID || !st.SnapshotSupport || st.DriverHandlesShareServers {
		t.Errorf("GetShareType: %+v %v", st, err)
	}
	if _, err := c.GetShareType(ctx, "gold"); !IsNotFound(err) {
		t.Errorf("unknown type: want KindNotFound, got %v", err)
	}
	if q, err := c.GetShareQuota(ctx); err != nil || q.Shares.InUse != 4 || q.Gigabytes.InUse != 4 {
		t.Errorf("GetShareQuota: %+v %v", q, err)
	}
	if z, err := c.ListShareAvailabilityZones(ctx); err != nil || len(z) == 0 {
		t.Errorf("ListShareAvailabilityZones: %v %v", z, err)
	}
}

func TestShareCallsShareTheRateLimiterAndTokenRenewal(t *testing.T) {
	e := startEmulator(t, emulator.Options{TokenTTL: 2 * time.Second})
	ctx := ctxTimeout(t, 60*time.Second)
	for _, tc := range []struct {
		name   string
		limits map[string]RateLimit
		waits  bool
	}{
		{"a sharev2 bucket paces Manila calls", map[string]RateLimit{"sharev2": {QPS: 5, Burst: 1}}, true},
		{"a volumev3 bucket does not", map[string]RateLimit{"volumev3": {QPS: 5, Burst: 1}}, false},
		{"the all-services bucket does", map[string]RateLimit{AllServices: {QPS: 5, Burst: 1}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			set, err := NewShareClouds(ctx, []string{writeConf(t, e.CloudConf("Global", "demo"))},
				Options{ReloadInterval: -1, Observer: rec, RateLimits: tc.limits})
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := set.ForSecrets(ctx, nil)
			for i := 0; i < 4; i++ {
				if _, err := sc.GetShareType(ctx, "cephfstype"); err != nil {
					t.Fatal(err)
				}
			}
			if got := rec.count(func(r *recorder) int { return r.rateWaits }) > 0; got != tc.waits {
				t.Errorf("rate-limit waits: %v, want %v", got, tc.waits)
			}
		})
	}
	// The share client renews the shared token on a 401 like Cinder's.
	rec := newRecorder()
	c := newShareCloud(t, e.CloudConf("Global", "demo"), rec)
	if _, err := c.ListShareAvailabilityZones(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // outlive the 2 s token
	}
	if _, err := c.ListShareAvailabilityZones(ctx); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if n := rec.count(func(r *recorder) int { return r.renewals }); n < 2 {
		t.Errorf("token issues = %d, want a renewal after expiry", n)
	}
}

func TestAccessRuleErrorCarriesManilaMessage(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "rule-err", Protocol: "CEPHFS", SizeGiB: 1})
	// The CephFS native backend applies cephx rules only: an ip rule goes
	// to error, as on the rig.
	r, err := c.GrantAccess(ctx, GrantAccessOpts{ShareID: s.ID, AccessType: AccessTypeIP, AccessTo: "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitAccessRule(ctx, s.ID, r.ID)
	if KindOf(err) != KindErrorState || got == nil || got.State != AccessError {
		t.Fatalf("want KindErrorState with the rule in error, got %+v %v", got, err)
	}
	m, merr := c.LatestShareMessage(ctx, s.ID)
	if merr != nil || m == nil || !strings.Contains(err.Error(), m.UserMessage) {
		t.Errorf("the error should carry Manila's message %+v: %v (%v)", m, err, merr)
	}
}

func TestShareQuotaIsOverQuota(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	e.Manila().SetQuota(e.ProjectID("demo"), manila.Quota{Shares: 10, Gigabytes: 3, Snapshots: 10, SnapshotGigabytes: 10, ShareNetworks: 1, PerShareGigabytes: -1})
	if _, err := c.CreateShare(ctx, CreateShareOpts{Name: "big", Protocol: "CEPHFS", SizeGiB: 4}); KindOf(err) != KindOverQuota {
		t.Errorf("create over the gigabytes quota: want KindOverQuota, got %v", err)
	}
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "small", Protocol: "CEPHFS", SizeGiB: 2})
	if err := c.ExtendShare(ctx, s.ID, 5); KindOf(err) != KindOverQuota {
		t.Errorf("extend over the gigabytes quota: want KindOverQuota, got %v", err)
	}
	q, err := c.GetShareQuota(ctx)
	if err != nil || q.Gigabytes.Limit != 3 || q.Gigabytes.InUse != 2 {
		t.Errorf("GetShareQuota: %+v %v", q, err)
	}
}

// TestDeleteShareAfterLostAnswerIsDone: the DELETE is retried after a 500
// that came after Manila acted; the repeat finds the share deleting
// (403 "Invalid share"), which is success, not a conflict.
func TestDeleteShareAfterLostAnswerIsDone(t *testing.T) {
	e := startEmulator(t, emulator.Options{Latency: map[string]time.Duration{manila.OpShareDelete: 3 * time.Second}})
	c := newShareCloud(t, e.CloudConf("Global", "demo"), nil)
	ctx := ctxTimeout(t, 60*time.Second)
	s := mustShare(ctx, t, c, CreateShareOpts{Name: "lost-delete", Protocol: "CEPHFS", SizeGiB: 1})
	p := lostAnswerProxy(t, e, http.MethodDelete, "/shares/"+s.ID, 1)
	rec := newRecorder()
	cp := newShareCloud(t, confVia(e, p.URL), rec)
	if err := cp.DeleteShare(ctx, s.ID); err != nil {
		t.Fatalf("delete whose first answer was lost: %v", err)
	}
	if n := rec.count(func(r *recorder) int { return r.requests["sharev2 share_delete"] }); n < 2 {
		t.Errorf("%d DELETEs: the lost answer should have been retried", n)
	}
	if err := c.WaitShareGone(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentShareWaitsShareListings: 30 shares waited for at once are
// answered by shares/detail listings, one per tick, not a GET per waiter
// per tick.
func TestConcurrentShareWaitsShareListings(t *testing.T) {
	e := startEmulator(t, emulator.Options{Latency: map[string]time.Duration{manila.OpShareCreate: time.Second}})
	rec := newRecorder()
	c := newShareCloud(t, e.CloudConf("Global", "demo"), rec)
	ctx := ctxTimeout(t, 60*time.Second)
	const n = 30
	var ids []string
	for i := 0; i < n; i++ {
		s, err := c.CreateShare(ctx, CreateShareOpts{Name: "many-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Protocol: "CEPHFS", SizeGiB: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.WaitShare(ctx, id, shareAvailable)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("share %d: %v", i, err)
		}
	}
	polls := rec.count(func(r *recorder) int { return r.requests["sharev2 share_poll"] })
	t.Logf("%d concurrent share waits (create 1 s): %d poll requests, %d poller fetches", n, polls, c.sharePolls.shares.Fetches())
	if polls >= n {
		t.Errorf("%d poll requests for %d waiters: the waits should share listings", polls, n)
	}
}
