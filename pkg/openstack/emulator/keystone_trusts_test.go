package emulator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

func trustAuth(e *Emulator, trustID, userID, password string) (*gophercloud.ProviderClient, error) {
	ao := &tokens.AuthOptions{IdentityEndpoint: e.AuthURL(), UserID: userID, Password: password, Scope: tokens.Scope{TrustID: trustID}}
	p, err := openstack.NewClient(e.AuthURL())
	if err != nil {
		return nil, err
	}
	return p, openstack.AuthenticateV3(context.Background(), p, ao, gophercloud.EndpointOpts{})
}

func TestKeystoneTrustScopedTokens(t *testing.T) {
	e := startEmu(t, Options{})
	demo, second := e.UserID("demo"), e.UserID("second")
	plain := e.AddTrust("demo", "second", "demo", false, 0)
	imp := e.AddTrust("demo", "second", "demo", true, 0)
	if plain == "" || imp == "" || e.AddTrust("demo", "second", "second", false, 0) != "" {
		t.Fatal("a trust must be on the trustor's own project")
	}
	for _, c := range []struct {
		trust, user string
	}{{plain, second}, {imp, demo}} {
		p, err := trustAuth(e, c.trust, second, "second-secret")
		if err != nil {
			t.Fatalf("trust %s: %v", c.trust, err)
		}
		var tok struct { // ExtractInto reads the "token" member
			User    struct{ ID string }
			Project struct{ ID string }
			Trust   struct {
				ID            string
				Impersonation bool
				TrusteeUser   struct{ ID string } `json:"trustee_user"`
				TrustorUser   struct{ ID string } `json:"trustor_user"`
			} `json:"OS-TRUST:trust"`
		}
		if err := p.GetAuthResult().(tokens.CreateResult).ExtractInto(&tok); err != nil {
			t.Fatal(err)
		}
		if tok.User.ID != c.user || tok.Project.ID != e.ProjectID("demo") || tok.Trust.ID != c.trust ||
			tok.Trust.TrusteeUser.ID != second || tok.Trust.TrustorUser.ID != demo || tok.Trust.Impersonation != (c.trust == imp) {
			t.Errorf("trust %s token = %+v", c.trust, tok)
		}
		vc, err := openstack.NewBlockStorageV3(p, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := volumes.List(vc, nil).AllPages(context.Background()); err != nil {
			t.Errorf("a trust-scoped token cannot list volumes: %v", err)
		}
	}

	for name, c := range map[string]struct {
		trust, user, password string
		code                  int
	}{
		"unknown trust":   {"nope", second, "second-secret", http.StatusUnauthorized},
		"not the trustee": {plain, demo, "demo-secret", http.StatusForbidden},
		"wrong password":  {plain, second, "x", http.StatusUnauthorized},
	} {
		if _, err := trustAuth(e, c.trust, c.user, c.password); !gophercloud.ResponseCodeIs(err, c.code) {
			t.Errorf("%s: want %d, got %v", name, c.code, err)
		}
	}
	expired := e.AddTrust("demo", "second", "demo", false, time.Nanosecond)
	if _, err := trustAuth(e, expired, second, "second-secret"); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("expired trust: want 401, got %v", err)
	}
}

// Deleting a trust or an application credential through Keystone's API
// makes the tokens it issued fail: 401 to a service, 404 naming what is
// gone to a validation, as Zed's Keystone answers.
func TestKeystoneDeletesRevokeTokens(t *testing.T) {
	e := startEmu(t, Options{})
	owner := provider(t, e) // demo's own password token
	do := func(method, path string, token string, subject string) int {
		req, _ := http.NewRequest(method, e.AuthURL()+path, nil)
		req.Header.Set("X-Auth-Token", token)
		if subject != "" {
			req.Header.Set("X-Subject-Token", subject)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	gone := func(what, token string) {
		t.Helper()
		if code := do("GET", "/auth/catalog", token, ""); code != http.StatusUnauthorized {
			t.Errorf("%s: using the token: %d, want 401", what, code)
		}
		if code := do("GET", "/auth/tokens", owner.Token(), token); code != http.StatusNotFound {
			t.Errorf("%s: validating the token: %d, want 404", what, code)
		}
	}

	trustID := e.AddTrust("demo", "second", "demo", false, time.Hour)
	tp, err := trustAuth(e, trustID, e.UserID("second"), "second-secret")
	if err != nil {
		t.Fatal(err)
	}
	other := e.AddTrust("demo", "second", "demo", false, time.Hour)
	secondOwn, err := openstack.AuthenticatedClient(context.Background(), authOpts(e, "second", "second-secret", "second"))
	if err != nil {
		t.Fatal(err)
	}
	if code := do("DELETE", "/OS-TRUST/trusts/"+other, secondOwn.Token(), ""); code != http.StatusNoContent {
		t.Errorf("the trustee ending a trust: %d, want 204", code)
	}
	if code := do("DELETE", "/OS-TRUST/trusts/"+trustID, owner.Token(), ""); code != http.StatusNoContent {
		t.Errorf("the trustor ending the trust: %d, want 204", code)
	}
	if code := do("DELETE", "/OS-TRUST/trusts/"+trustID, owner.Token(), ""); code != http.StatusNotFound {
		t.Errorf("ending it again: %d, want 404", code)
	}
	gone("deleted trust", tp.Token())

	appID := e.AddApplicationCredential("demo", "demo", "csi", "s")
	ap, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: e.AuthURL(), ApplicationCredentialID: appID, ApplicationCredentialSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/users/" + e.UserID("demo") + "/application_credentials/" + appID
	if code := do("DELETE", "/users/"+e.UserID("second")+"/application_credentials/"+appID, owner.Token(), ""); code != http.StatusForbidden {
		t.Errorf("deleting under another user: %d, want 403", code)
	}
	if code := do("DELETE", path, owner.Token(), ""); code != http.StatusNoContent {
		t.Errorf("deleting the credential: %d, want 204", code)
	}
	if code := do("DELETE", path, owner.Token(), ""); code != http.StatusNotFound {
		t.Errorf("deleting it again: %d, want 404", code)
	}
	gone("deleted application credential", ap.Token())
	if code := do("GET", "/auth/catalog", owner.Token(), ""); code != http.StatusOK {
		t.Errorf("the owner's password token: %d, want 200", code)
	}
}
