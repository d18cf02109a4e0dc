package openstack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestAuthVariantsAgainstEmulator(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	// Learn the user id and a token with plain password auth first.
	base := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	bc := mustGet(t, base, "")
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := bc.ListVolumes(ctx, ListOpts{}); err != nil {
		t.Fatalf("password by name: %v", err)
	}
	cr := bc.provider.GetAuthResult().(tokens3.CreateResult)
	u, err := cr.ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	appID := e.AddApplicationCredential("demo", "demo", "csi-cred", "app-secret-1")
	trustID := e.AddTrust("demo", "second", "demo", false, time.Hour)
	auth := "[Global]\nauth-url = " + e.AuthURL() + "\nregion = RegionOne\n"
	cases := map[string]string{
		"password by user-id":              "user-id = " + u.ID + "\npassword = demo-secret\ntenant-id = " + e.ProjectID("demo") + "\n",
		"password with domain-id":          "username = demo\npassword = demo-secret\nuser-domain-id = default\ntenant-name = demo\ntenant-domain-id = default\n",
		"application credential id":        "application-credential-id = " + appID + "\napplication-credential-secret = app-secret-1\n",
		"application credential by name":   "application-credential-name = csi-cred\napplication-credential-secret = app-secret-1\nusername = demo\nuser-domain-name = Default\n",
		"trust (second acts in demo)":      "trust-id = " + trustID + "\ntrustee-id = " + e.UserID("second") + "\ntrustee-password = second-secret\n",
		"token (pass-through, no renewal)": "token = " + bc.provider.Token() + "\n",
		"token rescoped to the project":    "token = " + bc.provider.Token() + "\ntenant-id = " + e.ProjectID("demo") + "\n",
	}
	for name, keys := range cases {
		t.Run(name, func(t *testing.T) {
			s := newSet(t, []string{writeConf(t, auth+keys)}, Options{ReloadInterval: -1})
			c := mustGet(t, s, "")
			v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "auth-" + strings.ReplaceAll(name, " ", "-"), SizeGiB: 1})
			if err != nil {
				t.Fatalf("CreateVolume: %v", err)
			}
			if got := c.project(); got != e.ProjectID("demo") {
				t.Errorf("project = %q, want demo's %q", got, e.ProjectID("demo"))
			}
			if _, err := c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
				t.Fatalf("WaitVolume: %v", err)
			}
			if err := c.DeleteVolume(ctx, v.ID); err != nil {
				t.Errorf("DeleteVolume: %v", err)
			}
			if err := c.WaitVolumeGone(ctx, v.ID); err != nil {
				t.Errorf("WaitVolumeGone: %v", err)
			}
		})
	}
	if e.Counters()["POST /identity/v3/auth/tokens"] == 0 {
		t.Errorf("counters show no token request: %v", e.Counters())
	}

	t.Run("wrong secret fails at startup, without the secret in the error", func(t *testing.T) {
		_, err := NewClouds(context.Background(), []string{writeConf(t, auth+"application-credential-id = "+appID+"\napplication-credential-secret = wrong-sekrit\n")}, Options{ReloadInterval: -1})
		if err == nil {
			t.Fatal("NewClouds accepted a wrong secret")
		}
		if KindOf(err) != KindForbidden || strings.Contains(err.Error(), "wrong-sekrit") {
			t.Errorf("err = %v (kind %v)", err, KindOf(err))
		}
	})
}

// The Keystone request a trust sends: trustee credentials, trust scope.
func TestTrustAuthRequestShape(t *testing.T) {
	ao := authOptions(&config.Cloud{AuthURL: "http://k/v3", TrustID: "trust-1", TrusteeID: "trustee-uid", TrusteePassword: "pw"})
	body, err := ao.ToTokenV3CreateMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	scope, err := ao.ToTokenV3ScopeMap()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"auth": body, "scope": scope})
	for _, want := range []string{`"id":"trustee-uid"`, `"password":"pw"`, `"OS-TRUST:trust":{"id":"trust-1"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("trust auth body %s lacks %s", b, want)
		}
	}
}

func TestTokenRenewedOn401(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := c.GetLimits(ctx); err != nil {
		t.Fatal(err)
	}
	first := c.provider.Token()
	before := e.Counters()["POST /identity/v3/auth/tokens"]
	e.ExpireTokens()
	if _, err := c.GetLimits(ctx); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if c.provider.Token() == first {
		t.Error("token not renewed")
	}
	if got := e.Counters()["POST /identity/v3/auth/tokens"] - before; got != 1 {
		t.Errorf("token requests after expiry = %d, want 1", got)
	}
	if got := rec.count(func(r *recorder) int { return r.renewals }); got != 2 {
		t.Errorf("ObserveTokenRenewal calls = %d, want 2 (issue + renewal)", got)
	}
	// Many calls reuse the token: no further token requests.
	for i := 0; i < 5; i++ {
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.Counters()["POST /identity/v3/auth/tokens"] - before; got != 1 {
		t.Errorf("token requests = %d after reuse, want 1", got)
	}
}

func TestTrustRefusals(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	trustID := e.AddTrust("demo", "second", "demo", false, time.Hour)
	auth := "[Global]\nauth-url = " + e.AuthURL() + "\nregion = RegionOne\n"
	ctx := ctxTimeout(t, 30*time.Second)
	cases := map[string]string{
		"not the trustee": "trust-id = " + trustID + "\ntrustee-id = " + e.UserID("demo") + "\ntrustee-password = demo-secret\n",
		"unknown trust":   "trust-id = 0000\ntrustee-id = " + e.UserID("second") + "\ntrustee-password = second-secret\n",
		"wrong password":  "trust-id = " + trustID + "\ntrustee-id = " + e.UserID("second") + "\ntrustee-password = not-it\n",
	}
	for name, keys := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewClouds(ctx, []string{writeConf(t, auth+keys)}, Options{ReloadInterval: -1})
			if err == nil {
				t.Fatal("NewClouds accepted the trust")
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "not-it") {
				t.Errorf("the error shows the password: %v", err)
			}
			// Fatal at startup, not "will retry": no retry fixes it.
			if KindOf(err) != KindForbidden {
				t.Errorf("kind %v, want forbidden: %v", KindOf(err), err)
			}
		})
	}

	t.Run("an auth-url that is not Keystone's is a config error", func(t *testing.T) {
		conf := "[Global]\nauth-url = " + e.URL() + "/not-keystone/v3\nregion = RegionOne\nusername = demo\npassword = demo-secret\nuser-domain-name = Default\ntenant-name = demo\n"
		_, err := NewClouds(ctx, []string{writeConf(t, conf)}, Options{ReloadInterval: -1})
		if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "auth-url") {
			t.Errorf("err = %v (kind %v), want a config error naming auth-url", err, KindOf(err))
		}
	})

	t.Run("a deleted trust stops a running cloud", func(t *testing.T) {
		s := newSet(t, []string{writeConf(t, auth+"trust-id = "+trustID+"\ntrustee-id = "+e.UserID("second")+"\ntrustee-password = second-secret\n")}, Options{ReloadInterval: -1})
		c := mustGet(t, s, "")
		if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
			t.Fatal(err)
		}
		if !e.DeleteTrust(trustID) {
			t.Fatal("trust not deleted")
		}
		_, err := c.ListVolumes(ctx, ListOpts{})
		if err == nil {
			t.Fatal("the revoked trust's token still works")
		}
		if KindOf(err) != KindForbidden {
			t.Errorf("kind %v, want forbidden: %v", KindOf(err), err)
		}
	})
}

// An operator rotates an application credential the way Keystone's docs
// say: create the new one, roll it out, delete the old one. Deleting it
// revokes its tokens at once, so the next call gets 401 and the plugin must
// re-read the file and authenticate with the new credential, without a
// restart and without a failed request.
func TestApplicationCredentialRotation(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	ctx := ctxTimeout(t, 30*time.Second)
	auth := "[Global]\nauth-url = " + e.AuthURL() + "\nregion = RegionOne\n"
	oldID := e.AddApplicationCredential("demo", "demo", "csi-2026-10", "old-sekrit")
	conf := writeConf(t, auth+"application-credential-id = "+oldID+"\napplication-credential-secret = old-sekrit\n")
	s := newSet(t, []string{conf}, Options{ReloadInterval: -1}) // only the 401 re-read
	c := mustGet(t, s, "")
	if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
		t.Fatal(err)
	}
	newID := e.AddApplicationCredential("demo", "demo", "csi-2026-11", "new-sekrit")
	rewrite(t, conf, auth+"application-credential-id = "+newID+"\napplication-credential-secret = new-sekrit\n")
	if !e.DeleteApplicationCredential(oldID) {
		t.Fatal("old credential not deleted")
	}
	if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
		t.Fatalf("after the old credential was deleted: %v", err)
	}
	if got := c.creds.Load().ApplicationCredentialID; got != newID {
		t.Errorf("credential in use = %s, want the new %s", got, newID)
	}
}
