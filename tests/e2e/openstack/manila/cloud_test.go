// Package manila checks the Manila cloud layer against the rig's real
// Manila Zed (../shared/tools/openstack-rig/manila): every ShareCloud
// method on both share types, CephFS native (cephx rules) and CephFS
// through NFS-Ganesha (ip rules), cleaning up everything it makes. The
// same share lives also run against the emulator's Manila, ungated, so
// the two answer every step alike.
package manila

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// requireManila skips unless the rig's Manila is up.
func requireManila(t *testing.T) *rig.Env {
	t.Helper()
	env := rig.Require(t)
	// hack/e2e-openstack.sh sets MANILA_UP once manila-api answers.
	if v, set := os.LookupEnv("MANILA_UP"); set && v != "1" {
		t.Skip("the rig's Manila is not up (MANILA_UP=" + v + ")")
	}
	if _, err := os.Stat("/var/lib/openstack-rig-manila"); err != nil {
		t.Skip("the rig's Manila is not installed (no /var/lib/openstack-rig-manila)")
	}
	return env
}

func memberSecrets(env *rig.Env) map[string]string {
	return map[string]string{
		"os-authURL": env.AuthURL, "os-region": "RegionOne", "os-userName": env.User, "os-password": env.Password,
		"os-projectName": env.Project, "os-domainName": "Default",
	}
}

type recorder struct {
	ops map[string]int
}

func (r *recorder) ObserveRequest(service, op string, _ int, _ time.Duration) {
	if service == "sharev2" {
		r.ops[op]++
	}
}
func (r *recorder) ObserveRetry(string, string, string)        {}
func (r *recorder) ObserveRateLimitWait(string, time.Duration) {}
func (r *recorder) ObserveTokenRenewal(string)                 {}
func (r *recorder) ObserveWait(string, time.Duration, string)  {}

// TestShareCloudOnRealManila runs every ShareCloud method on the rig, for
// each share type the rig has.
func TestShareCloudOnRealManila(t *testing.T) {
	env := requireManila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rec := &recorder{ops: map[string]int{}}
	clouds := openstack.NewShareCloudsFrom(nil, openstack.Options{Observer: rec})
	sc, err := clouds.ForSecrets(ctx, memberSecrets(env))
	if err != nil {
		t.Fatalf("ForSecrets: %v", err)
	}
	f, err := sc.ShareFeatures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Microversion != "2.73" || !f.AccessMetadata || !f.SchedulerHints || !f.SnapshotMetadata {
		t.Errorf("Zed should give 2.73 with every feature: %+v", f)
	}
	zones, err := sc.ListShareAvailabilityZones(ctx)
	if err != nil || len(zones) == 0 {
		t.Errorf("ListShareAvailabilityZones: %v %v", zones, err)
	}
	if _, err := sc.GetShareType(ctx, "e2e-no-such-type"); !openstack.IsNotFound(err) {
		t.Errorf("unknown share type: want KindNotFound, got %v", err)
	}
	q, err := sc.GetShareQuota(ctx)
	if err != nil || q.Gigabytes.Limit == 0 {
		t.Errorf("GetShareQuota: %+v %v", q, err)
	}
	for _, tc := range []struct{ typ, proto, accessType string }{
		{"cephfstype", "CEPHFS", openstack.AccessTypeCephx},
		{"cephfsnfstype", "NFS", openstack.AccessTypeIP},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			st, err := sc.GetShareType(ctx, tc.typ)
			if openstack.IsNotFound(err) {
				t.Skipf("the rig has no share type %s (MANILA_NFS=1 adds the NFS one)", tc.typ)
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.DriverHandlesShareServers || !st.SnapshotSupport || !st.CreateShareFromSnapshotSupport {
				t.Errorf("share type %s: %+v", tc.typ, st)
			}
			shareLife(ctx, t, sc, tc.typ, tc.proto, tc.accessType)
		})
	}
	for _, op := range []string{"share_create", "share_get", "share_list", "share_find", "share_delete", "share_extend",
		"share_shrink", "share_access_allow", "share_access_list", "share_access_deny", "share_snapshot_create",
		"share_snapshot_delete", "share_export_locations", "share_type_list", "share_quota", "share_messages",
		"share_metadata_set", "share_poll", "share_access_poll"} {
		if rec.ops[op] == 0 {
			t.Errorf("no sharev2 request reported as %s (saw %v)", op, rec.ops)
		}
	}
}

func available(s *openstack.Share) bool { return s.Status == openstack.ShareAvailable }

// shareLife takes one share through everything and deletes what it made,
// also when it fails half-way.
func shareLife(ctx context.Context, t *testing.T, sc openstack.ShareCloud, typ, proto, accessType string) {
	name := "e2e-mcloud-" + rig.NewUUID()[:8]
	meta := map[string]string{openstack.MetaManilaCluster: "e2e-manila-cloud"}
	var shares, snaps []string
	t.Cleanup(func() { cleanup(t, sc, snaps, shares) })

	s, err := sc.CreateShare(ctx, openstack.CreateShareOpts{Name: name, Protocol: proto, SizeGiB: 1, ShareType: typ, Metadata: meta})
	if err != nil {
		t.Fatalf("CreateShare: %v", err)
	}
	shares = append(shares, s.ID)
	if s, err = sc.WaitShare(ctx, s.ID, available); err != nil {
		t.Fatalf("WaitShare: %v", err)
	}
	if s.Protocol != proto || s.SizeGiB != 1 || s.Metadata[openstack.MetaManilaCluster] != "e2e-manila-cloud" || s.ShareTypeName != typ {
		t.Errorf("share as created: %+v", s)
	}
	found, err := sc.FindSharesByName(ctx, name, meta)
	if err != nil || len(found) != 1 || found[0].ID != s.ID {
		t.Errorf("FindSharesByName: %v %v", found, err)
	}
	if other, err := sc.FindSharesByName(ctx, name, map[string]string{openstack.MetaManilaCluster: "someone-else"}); err != nil || len(other) != 0 {
		t.Errorf("another cluster's lookup must not find it: %v %v", other, err)
	}
	page, err := sc.ListShares(ctx, openstack.ShareListOpts{Metadata: meta, Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("ListShares limit 1: %+v %v", page, err)
	}
	locs, err := sc.ListExportLocations(ctx, s.ID)
	if err != nil || len(locs) == 0 || !strings.Contains(locs[0].Path, ":/volumes/") {
		t.Fatalf("ListExportLocations: %+v %v", locs, err)
	}
	t.Logf("%s export locations: %+v", proto, locs)
	if err := sc.SetShareMetadata(ctx, s.ID, map[string]string{"e2e": "yes"}); err != nil {
		t.Errorf("SetShareMetadata: %v", err)
	}
	if got, err := sc.GetShare(ctx, s.ID); err != nil || got.Metadata["e2e"] != "yes" || got.Metadata[openstack.MetaManilaCluster] == "" {
		t.Errorf("metadata after set: %+v %v", got, err)
	}

	rule := accessLife(ctx, t, sc, s.ID, accessType, name)
	resizeLife(ctx, t, sc, s.ID)
	snapID := snapshotLife(ctx, t, sc, s.ID, name, &snaps)

	// A share with a snapshot: Zed's 403 "Invalid share: %(reason)s." is
	// a conflict, not a permission problem.
	if err := sc.DeleteShare(ctx, s.ID); openstack.KindOf(err) != openstack.KindConflict {
		t.Errorf("DeleteShare with a snapshot: want KindConflict, got %v", err)
	}
	if proto == "CEPHFS" {
		restore(ctx, t, sc, snapID, name, typ, proto, meta, &shares)
	}
	if msg, err := sc.LatestShareMessage(ctx, s.ID); err != nil {
		t.Errorf("LatestShareMessage: %v", err)
	} else if msg != nil {
		t.Logf("latest message for the share: %s", msg.UserMessage)
	}

	if err := sc.RevokeAccess(ctx, s.ID, rule.ID); err != nil {
		t.Errorf("RevokeAccess: %v", err)
	}
	if err := sc.WaitAccessRuleGone(ctx, s.ID, rule.ID); err != nil {
		t.Errorf("WaitAccessRuleGone: %v", err)
	}
	if err := sc.DeleteShareSnapshot(ctx, snapID); err != nil {
		t.Errorf("DeleteShareSnapshot: %v", err)
	}
	if err := sc.WaitShareSnapshotGone(ctx, snapID); err != nil {
		t.Errorf("WaitShareSnapshotGone: %v", err)
	}
	if err := sc.DeleteShare(ctx, s.ID); err != nil {
		t.Errorf("DeleteShare: %v", err)
	}
	if err := sc.WaitShareGone(ctx, s.ID); err != nil {
		t.Errorf("WaitShareGone: %v", err)
	}
	if _, err := sc.GetShare(ctx, s.ID); !openstack.IsNotFound(err) {
		t.Errorf("GetShare after delete: want KindNotFound, got %v", err)
	}
	if err := sc.DeleteShare(ctx, s.ID); !openstack.IsNotFound(err) {
		t.Errorf("DeleteShare again: want KindNotFound, got %v", err)
	}
}

// accessLife grants a rule with node metadata, waits for it (and, for
// cephx, its key), and checks a second identical grant is a conflict.
func accessLife(ctx context.Context, t *testing.T, sc openstack.ShareCloud, shareID, accessType, name string) *openstack.AccessRule {
	to := "10.254.17.23"
	if accessType == openstack.AccessTypeCephx {
		to = name
	}
	opts := openstack.GrantAccessOpts{ShareID: shareID, AccessType: accessType, AccessTo: to, AccessLevel: "rw",
		Metadata: map[string]string{"manila.csi.openstack.org/node": "e2e-node-1"}}
	start := time.Now()
	r, err := sc.GrantAccess(ctx, opts)
	if err != nil {
		t.Fatalf("GrantAccess: %v", err)
	}
	if r.AccessKey != "" {
		t.Error("the allow answer's access key must not be used")
	}
	t.Logf("allow answered %s in %v", r.State, time.Since(start).Round(time.Millisecond))
	got, err := sc.WaitAccessRule(ctx, shareID, r.ID)
	if err != nil {
		t.Fatalf("WaitAccessRule: %v", err)
	}
	t.Logf("rule %s active after %v", accessType, time.Since(start).Round(time.Millisecond))
	if got.State != openstack.AccessActive || (accessType == openstack.AccessTypeCephx) != (got.AccessKey != "") {
		t.Errorf("rule after the wait: state %s, key present %v", got.State, got.AccessKey != "")
	}
	rules, err := sc.ListAccessRules(ctx, shareID)
	if err != nil || len(rules) != 1 || rules[0].Metadata["manila.csi.openstack.org/node"] != "e2e-node-1" {
		t.Errorf("ListAccessRules: %d rules, %v", len(rules), err)
	}
	if _, err := sc.GrantAccess(ctx, opts); openstack.KindOf(err) != openstack.KindConflict {
		t.Errorf("a second identical grant: want KindConflict, got %v", err)
	}
	return got
}

func resizeLife(ctx context.Context, t *testing.T, sc openstack.ShareCloud, shareID string) {
	if err := sc.ExtendShare(ctx, shareID, 2); err != nil {
		t.Fatalf("ExtendShare: %v", err)
	}
	s, err := sc.WaitShare(ctx, shareID, func(s *openstack.Share) bool { return available(s) && s.SizeGiB == 2 })
	if err != nil {
		t.Fatalf("WaitShare after extend: %v (%+v)", err, s)
	}
	if err := sc.ShrinkShare(ctx, shareID, 1); err != nil {
		t.Fatalf("ShrinkShare: %v", err)
	}
	if s, err = sc.WaitShare(ctx, shareID, func(s *openstack.Share) bool { return available(s) && s.SizeGiB == 1 }); err != nil {
		t.Fatalf("WaitShare after shrink: %v (%+v)", err, s)
	}
	if err := sc.ShrinkShare(ctx, shareID, 1); openstack.KindOf(err) != openstack.KindBadRequest {
		t.Errorf("shrink to the same size: want KindBadRequest, got %v", err)
	}
}

func snapshotLife(ctx context.Context, t *testing.T, sc openstack.ShareCloud, shareID, name string, snaps *[]string) string {
	snap, err := sc.CreateShareSnapshot(ctx, openstack.CreateShareSnapshotOpts{Name: name + "-snap", ShareID: shareID,
		Metadata: map[string]string{openstack.MetaManilaCluster: "e2e-manila-cloud"}})
	if err != nil {
		t.Fatalf("CreateShareSnapshot: %v", err)
	}
	*snaps = append(*snaps, snap.ID)
	got, err := sc.WaitShareSnapshot(ctx, snap.ID, func(s *openstack.ShareSnapshot) bool { return s.Status == openstack.ShareSnapshotAvailable })
	if err != nil {
		t.Fatalf("WaitShareSnapshot: %v", err)
	}
	if got.ShareID != shareID || got.Metadata[openstack.MetaManilaCluster] != "e2e-manila-cloud" {
		t.Errorf("snapshot: %+v", got)
	}
	if found, err := sc.FindShareSnapshotsByName(ctx, name+"-snap"); err != nil || len(found) != 1 {
		t.Errorf("FindShareSnapshotsByName: %v %v", found, err)
	}
	if p, err := sc.ListShareSnapshots(ctx, openstack.ShareListOpts{ShareID: shareID}); err != nil || len(p.Items) != 1 {
		t.Errorf("ListShareSnapshots by share: %+v %v", p, err)
	}
	if s, err := sc.GetShareSnapshot(ctx, snap.ID); err != nil || s.Status != openstack.ShareSnapshotAvailable {
		t.Errorf("GetShareSnapshot: %+v %v", s, err)
	}
	return snap.ID
}

// restore makes a share from the snapshot: on the rig it completes on the
// share manager's periodic task (10-18 s).
func restore(ctx context.Context, t *testing.T, sc openstack.ShareCloud, snapID, name, typ, proto string, meta map[string]string, shares *[]string) {
	r, err := sc.CreateShare(ctx, openstack.CreateShareOpts{Name: name + "-restore", Protocol: proto, SizeGiB: 1,
		ShareType: typ, SnapshotID: snapID, Metadata: meta})
	if err != nil {
		t.Errorf("CreateShare from snapshot: %v", err)
		return
	}
	*shares = append(*shares, r.ID)
	start := time.Now()
	if r, err = sc.WaitShare(ctx, r.ID, available); err != nil {
		t.Errorf("WaitShare restore: %v", err)
		return
	}
	t.Logf("restore available after %v", time.Since(start).Round(time.Millisecond))
	if r.SnapshotID != snapID {
		t.Errorf("restored share's snapshot id %q", r.SnapshotID)
	}
	if err := sc.DeleteShare(ctx, r.ID); err != nil {
		t.Errorf("DeleteShare restore: %v", err)
	}
	if err := sc.WaitShareGone(ctx, r.ID); err != nil {
		t.Errorf("WaitShareGone restore: %v", err)
	}
}

// cleanup deletes what a failed run left: snapshots first, then shares.
func cleanup(t *testing.T, sc openstack.ShareCloud, snaps, shares []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range snaps {
		if err := sc.DeleteShareSnapshot(ctx, id); err == nil {
			_ = sc.WaitShareSnapshotGone(ctx, id)
		}
	}
	for _, id := range shares {
		if err := sc.DeleteShare(ctx, id); err == nil || openstack.KindOf(err) == openstack.KindConflict {
			if werr := sc.WaitShareGone(ctx, id); werr != nil && !openstack.IsNotFound(werr) {
				t.Errorf("cleanup of share %s: %v", id, werr)
			}
		}
	}
}

// TestShareCloudsFromCloudConfOnRealManila: a cloud.conf section serves
// Manila without touching Cinder, and a wrong password in secrets is
// KindForbidden without the value.
func TestShareCloudsFromCloudConfOnRealManila(t *testing.T) {
	env := requireManila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conf := filepath.Join(t.TempDir(), "cloud.conf")
	body := "[Global]\nauth-url = " + env.AuthURL + "\nusername = " + env.User + "\npassword = " + env.Password +
		"\nuser-domain-name = Default\ntenant-name = " + env.Project + "\ntenant-domain-name = Default\nregion = RegionOne\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ops: map[string]int{}}
	set, err := openstack.NewShareClouds(ctx, []string{conf}, openstack.Options{Observer: rec, ReloadInterval: -1})
	if err != nil {
		t.Fatalf("NewShareClouds: %v", err)
	}
	sc, err := set.ForSecrets(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.GetShareType(ctx, "cephfstype"); err != nil {
		t.Errorf("GetShareType through cloud.conf: %v", err)
	}
	bad := memberSecrets(env)
	bad["os-password"] = "wrong-" + rig.NewUUID()
	_, err = set.ForSecrets(ctx, bad)
	if openstack.KindOf(err) != openstack.KindForbidden || strings.Contains(err.Error(), bad["os-password"]) {
		t.Errorf("wrong password: want KindForbidden without the value, got %v", err)
	}
}

// TestDeleteShareStuckInErrorDeletingOnRealManila: Zed refuses a plain
// DELETE of an error_deleting share (403 "Invalid share"); a member's
// DeleteShare then says an administrator must act, and an admin's
// DeleteShare goes on to force_delete.
func TestDeleteShareStuckInErrorDeletingOnRealManila(t *testing.T) {
	env := requireManila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clouds := openstack.NewShareCloudsFrom(nil, openstack.Options{})
	member, err := clouds.ForSecrets(ctx, memberSecrets(env))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clouds.ForSecrets(ctx, map[string]string{"os-authURL": env.AuthURL, "os-region": "RegionOne",
		"os-userName": env.AdminUser, "os-password": env.AdminPassword, "os-projectName": env.AdminProject, "os-domainName": "Default"})
	if err != nil {
		t.Fatal(err)
	}
	adminREST, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := member.CreateShare(ctx, openstack.CreateShareOpts{Name: "e2e-mcloud-stuck-" + rig.NewUUID()[:8], Protocol: "CEPHFS", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin.DeleteShare(c, s.ID); err == nil {
			_ = admin.WaitShareGone(c, s.ID)
		}
	})
	if _, err := member.WaitShare(ctx, s.ID, available); err != nil {
		t.Fatal(err)
	}
	// reset-state is admin-only and not something the driver does: raw
	// REST on the endpoint register_manila.py made.
	body := `{"reset_status": {"status": "` + openstack.ShareErrorDeleting + `"}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:8786/v2/"+adminREST.ProjectID+"/shares/"+s.ID+"/action",
		strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", adminREST.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Manila-API-Version", "2.73")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("reset_status: HTTP %d", resp.StatusCode)
	}
	err = member.DeleteShare(ctx, s.ID)
	if openstack.KindOf(err) != openstack.KindConflict || !strings.Contains(err.Error(), "administrator") ||
		!strings.Contains(err.Error(), openstack.ShareErrorDeleting) {
		t.Errorf("member delete of an error_deleting share: want KindConflict saying an administrator must act, got %v", err)
	}
	if err := admin.DeleteShare(ctx, s.ID); err != nil {
		t.Fatalf("admin delete (force_delete): %v", err)
	}
	if err := member.WaitShareGone(ctx, s.ID); err != nil {
		t.Errorf("WaitShareGone after force_delete: %v", err)
	}
}

// TestShareCloudOnEmulator runs the same share lives against the
// emulator's Manila (no rig needed): every step the rig passes, the
// emulator must answer alike.
func TestShareCloudOnEmulator(t *testing.T) {
	e, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc, err := openstack.NewShareCloudsFrom(nil, openstack.Options{}).ForSecrets(ctx, map[string]string{
		"os-authURL": e.AuthURL(), "os-region": "RegionOne", "os-userName": "demo", "os-password": "demo-secret",
		"os-projectName": "demo", "os-domainName": "Default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ typ, proto, accessType string }{
		{"cephfstype", "CEPHFS", openstack.AccessTypeCephx},
		{"cephfsnfstype", "NFS", openstack.AccessTypeIP},
	} {
		t.Run(tc.proto, func(t *testing.T) { shareLife(ctx, t, sc, tc.typ, tc.proto, tc.accessType) })
	}
}
