package manila_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shareaccessrules"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

func TestAccessRulesReachActiveThroughTheTransitionalStates(t *testing.T) {
	for _, tc := range []struct {
		name, proto, shareType, accessType, accessTo string
		wantKey                                      bool
	}{
		{"ip on NFS", "NFS", "cephfsnfstype", "ip", "10.0.0.5", false},
		{"cephx on CephFS", "CEPHFS", "cephfstype", "cephx", "alice", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Small latencies, so polling sees the states in between.
			e := start(t, emulator.Options{Latency: map[string]time.Duration{
				"access_allow": 300 * time.Millisecond, "access_key": 150 * time.Millisecond, "access_deny": 300 * time.Millisecond}})
			c := client(t, e, "2.73")
			sh := createShare(t, c, shares.CreateOpts{ShareProto: tc.proto, Size: 1, ShareType: tc.shareType})
			r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: tc.accessType, AccessTo: tc.accessTo, AccessLevel: "rw"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if r.State != "queued_to_apply" || r.AccessKey != "" {
				t.Errorf("allow_access answered state %q key set %v", r.State, r.AccessKey != "")
			}
			if got := accessRulesStatus(t, c, sh.ID); got != "syncing" && got != "active" {
				t.Errorf("access_rules_status %q while the rule applies", got)
			}
			rule, states := waitRule(t, c, r.ID, is("active", "error"))
			if rule.State != "active" || !inOrder(states, "queued_to_apply", "applying", "active") {
				t.Fatalf("states %v", states)
			}
			if (rule.AccessKey != "") != tc.wantKey {
				t.Errorf("access key present %v, want %v", rule.AccessKey != "", tc.wantKey)
			}
			if got := accessRulesStatus(t, c, sh.ID); got != "active" {
				t.Errorf("access_rules_status %q", got)
			}
			if err := shares.RevokeAccess(ctx, c, sh.ID, shares.RevokeAccessOpts{AccessID: r.ID}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			_, states = waitFor(t, func() (string, error) {
				r, err := shareaccessrules.Get(ctx, c, r.ID).Extract()
				if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					return "gone", nil
				}
				if err != nil {
					return "", err
				}
				return r.State, nil
			}, func(s string) string { return s }, is("gone"))
			if !inOrder(states, "queued_to_deny", "denying", "gone") {
				t.Errorf("deny states %v", states)
			}
		})
	}
}

func TestAccessRuleTheBackendCannotApplyEndsInError(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
	r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "ip", AccessTo: "10.0.0.5", AccessLevel: "rw"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rule, _ := waitRule(t, c, r.ID, is("active", "error")); rule.State != "error" {
		t.Errorf("ip rule on native CephFS: %s, want error", rule.State)
	}
	if got := accessRulesStatus(t, c, sh.ID); got != "error" {
		t.Errorf("access_rules_status %q, want error", got)
	}
}

func TestAllowAccessRefusals(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype"})
	if _, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "ip", AccessTo: "10.0.0.5", AccessLevel: "rw"}).Extract(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		typ, to, lvl string
		msg          string
	}{
		{"duplicate", "ip", "10.0.0.5", "rw", "Share access ip:10.0.0.5 exists."},
		{"bad network", "ip", "10.0.0.0/33", "rw", "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"},
		{"bad level", "ip", "10.0.0.6", "xx", "Invalid access rule: Invalid share access level: xx."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := raw(t, c, "POST", c.ServiceURL("shares", sh.ID, "action"), "2.73",
				map[string]any{"allow_access": map[string]any{"access_type": tc.typ, "access_to": tc.to, "access_level": tc.lvl}})
			if code != 400 || faultMessage(body) != tc.msg {
				t.Errorf("got %d %q", code, faultMessage(body))
			}
		})
	}
}

func TestAccessAPIsByMicroversion(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
	r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "cephx", AccessTo: "bob", AccessLevel: "ro"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	action := c.ServiceURL("shares", sh.ID, "action")
	for _, tc := range []struct {
		name, method, url, mv string
		body                  any
		code                  int
	}{
		{"access_list action at 2.44", "POST", action, "2.44", map[string]any{"access_list": nil}, 200},
		{"access_list action at 2.45", "POST", action, "2.45", map[string]any{"access_list": nil}, 404},
		{"os-access_list action at 2.6", "POST", action, "2.6", map[string]any{"os-access_list": nil}, 200},
		{"os-access_list action at 2.7", "POST", action, "2.7", map[string]any{"os-access_list": nil}, 404},
		{"unknown action", "POST", action, "2.73", map[string]any{"frobnicate": nil}, 400},
		{"share-access-rules at 2.44", "GET", c.ServiceURL("share-access-rules", r.ID), "2.44", nil, 404},
		{"share-access-rules at 2.45", "GET", c.ServiceURL("share-access-rules", r.ID), "2.45", nil, 200},
		{"list without share_id", "GET", c.ServiceURL("share-access-rules"), "2.45", nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body, _ := raw(t, c, tc.method, tc.url, tc.mv, tc.body); code != tc.code {
				t.Errorf("got %d %v", code, body)
			}
		})
	}
	rules, err := shareaccessrules.List(ctx, c, sh.ID).Extract()
	if err != nil || len(rules) != 1 || rules[0].AccessTo != "bob" || rules[0].AccessLevel != "ro" {
		t.Errorf("rules %+v %v", rules, err)
	}
}

func TestHeldAccessRuleStaysQueuedUntilReleased(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency time.Duration // long enough to hold the rule before it applies
		hold    func(e *emulator.Emulator)
		release func(e *emulator.Emulator, id string)
	}{
		{"by the stuck_access_rules fault", 50 * time.Millisecond,
			func(e *emulator.Emulator) { e.SetFaults(host.Faults{StuckAccessRules: true}) },
			func(e *emulator.Emulator, _ string) { e.SetFaults(host.Faults{}) }},
		{"by HoldAccessRule", time.Second,
			func(*emulator.Emulator) {},
			func(e *emulator.Emulator, id string) { e.Manila().HoldAccessRule(id, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, emulator.Options{Latency: map[string]time.Duration{"access_allow": tc.latency}})
			c := client(t, e, "2.73")
			sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
			tc.hold(e)
			r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "cephx", AccessTo: "held", AccessLevel: "rw"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			e.Manila().HoldAccessRule(r.ID, true)
			// Held: however often it is read, it stays queued without a key.
			for i := 0; i < 5; i++ {
				rule, err := shareaccessrules.Get(ctx, c, r.ID).Extract()
				if err != nil || rule.State != "queued_to_apply" || rule.AccessKey != "" {
					t.Fatalf("held rule %+v %v", rule, err)
				}
			}
			tc.release(e, r.ID)
			if rule, _ := waitRule(t, c, r.ID, is("active", "error")); rule.State != "active" || rule.AccessKey == "" {
				t.Errorf("released rule %+v", rule)
			}
		})
	}
}

// accessRulesStatus reads a share's access_rules_status (gophercloud's
// Share has no field for it).
func accessRulesStatus(t *testing.T, c *gophercloud.ServiceClient, shareID string) string {
	t.Helper()
	_, body, _ := raw(t, c, "GET", c.ServiceURL("shares", shareID), "2.73", nil)
	sh, _ := body["share"].(map[string]any)
	s, _ := sh["access_rules_status"].(string)
	return s
}

// inOrder reports whether seen is a subsequence of want ending in its last
// state: polling may miss short states, never reorder them.
func inOrder(seen []string, want ...string) bool {
	if len(seen) == 0 || seen[len(seen)-1] != want[len(want)-1] {
		return false
	}
	i := 0
	for _, s := range seen {
		for i < len(want) && want[i] != s {
			i++
		}
		if i == len(want) {
			return false
		}
	}
	return true
}
