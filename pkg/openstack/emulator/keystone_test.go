package emulator

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

func TestKeystoneAuthVariants(t *testing.T) {
	e := startEmu(t, Options{})
	demo := e.ProjectID("demo")
	appID := e.AddApplicationCredential("demo", "demo", "csi", "app-secret")
	if appID == "" {
		t.Fatal("no application credential")
	}
	cases := []struct {
		name     string
		opts     gophercloud.AuthOptions
		wantCode int // 0 = success
		project  string
	}{
		{"password user name + domain name, project name", gophercloud.AuthOptions{Username: "demo", Password: "demo-secret", DomainName: "Default", TenantName: "demo"}, 0, demo},
		{"password user id, project id", gophercloud.AuthOptions{UserID: demoUserID, Password: "demo-secret", TenantID: demo}, 0, demo},
		{"password domain id", gophercloud.AuthOptions{Username: "second", Password: "second-secret", DomainID: "default", TenantName: "second"}, 0, e.ProjectID("second")},
		{"application credential id", gophercloud.AuthOptions{ApplicationCredentialID: appID, ApplicationCredentialSecret: "app-secret"}, 0, demo},
		{"application credential name + user", gophercloud.AuthOptions{ApplicationCredentialName: "csi", ApplicationCredentialSecret: "app-secret", Username: "demo", DomainName: "Default"}, 0, demo},
		{"wrong password", gophercloud.AuthOptions{Username: "demo", Password: "nope", DomainName: "Default", TenantName: "demo"}, 401, ""},
		{"unknown user", gophercloud.AuthOptions{Username: "ghost", Password: "x", DomainName: "Default", TenantName: "demo"}, 401, ""},
		{"wrong app secret", gophercloud.AuthOptions{ApplicationCredentialID: appID, ApplicationCredentialSecret: "bad"}, 401, ""},
		{"project of another user", gophercloud.AuthOptions{Username: "demo", Password: "demo-secret", DomainName: "Default", TenantName: "second"}, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.IdentityEndpoint = e.AuthURL()
			p, err := openstack.AuthenticatedClient(context.Background(), tc.opts)
			if tc.wantCode != 0 {
				if !gophercloud.ResponseCodeIs(err, tc.wantCode) {
					t.Fatalf("want %d, got %v", tc.wantCode, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("auth: %v", err)
			}
			proj, err := p.GetAuthResult().(tokens.CreateResult).ExtractProject()
			if err != nil || proj.ID != tc.project {
				t.Fatalf("project %+v, %v", proj, err)
			}
			vc, err := openstack.NewBlockStorageV3(p, gophercloud.EndpointOpts{Region: "RegionOne"})
			if err != nil {
				t.Fatal(err)
			}
			if vc.Endpoint != e.URL()+"/volume/v3/"+tc.project+"/" {
				t.Fatalf("endpoint %s", vc.Endpoint)
			}
			if _, err := volumes.List(vc, nil).AllPages(context.Background()); err != nil {
				t.Fatalf("list with token: %v", err)
			}
		})
	}
}

func TestKeystoneCatalogAndTokenAuth(t *testing.T) {
	e := startEmu(t, Options{Region: "RegionTwo"})
	p, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.URL() + "/identity", Username: "demo", Password: "demo-secret", DomainName: "Default", TenantName: "demo"})
	if err != nil {
		t.Fatalf("auth via version discovery: %v", err)
	}
	cat, err := p.GetAuthResult().(tokens.CreateResult).ExtractServiceCatalog()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, entry := range cat.Entries {
		for _, ep := range entry.Endpoints {
			if ep.Region != "RegionTwo" {
				t.Errorf("endpoint region %q", ep.Region)
			}
			types[entry.Type+"/"+ep.Interface]++
		}
	}
	for _, want := range []string{"identity/public", "identity/internal", "volumev3/public", "volumev3/internal", "block-storage/public", "block-storage/internal", "compute/public", "compute/internal"} {
		if types[want] != 1 {
			t.Errorf("catalog lacks %s: %v", want, types)
		}
	}
	for _, iface := range []gophercloud.Availability{gophercloud.AvailabilityPublic, gophercloud.AvailabilityInternal} {
		if _, err := openstack.NewComputeV2(p, gophercloud.EndpointOpts{Region: "RegionTwo", Availability: iface}); err != nil {
			t.Errorf("compute %s: %v", iface, err)
		}
	}

	// Token method: a new scoped token from an existing one.
	tp, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.AuthURL(), TokenID: p.Token(), Scope: &gophercloud.AuthScope{ProjectName: "demo", DomainName: "Default"}})
	if err != nil {
		t.Fatalf("token auth: %v", err)
	}
	if tp.Token() == p.Token() || tp.Token() == "" {
		t.Fatalf("token auth returned %q", tp.Token())
	}
	// Token pass-through validates the token with GET /v3/auth/tokens.
	pp, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: e.AuthURL(), TokenID: p.Token()})
	if err != nil || pp.Token() != p.Token() {
		t.Fatalf("token pass-through: %v", err)
	}
}

func TestTokenExpiryReauthAndRotation(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	e.ResetCounters()
	e.ExpireTokens()
	// The service answers 401 and gophercloud re-authenticates once.
	if _, err := volumes.List(c.vol, nil).AllPages(ctx); err != nil {
		t.Fatalf("list after expiry: %v", err)
	}
	got := e.Counters()
	if got["POST /identity/v3/auth/tokens"] != 1 || got["GET /volume/v3/{project_id}/volumes/detail"] != 2 {
		t.Fatalf("counters %v", got)
	}

	// Password rotation: the old password stops working.
	e.SetUserPassword("demo", "rotated")
	e.ExpireTokens()
	_, err := volumes.List(c.vol, nil).AllPages(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want 401 after rotation, got %v", err)
	}
	if _, err := openstack.AuthenticatedClient(ctx, authOpts(e, "demo", "rotated", "demo")); err != nil {
		t.Fatalf("auth with new password: %v", err)
	}
}

func TestMissingOrForeignTokenOrProject(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	// A request without a token is 401.
	resp, err := http.Get(e.URL() + "/volume/v3/" + e.ProjectID("demo") + "/volumes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("X-Openstack-Request-Id") == "" {
		t.Fatalf("no token: %d %v", resp.StatusCode, resp.Header)
	}
	// A URL naming another project is rejected like Cinder does.
	_, err = c.vol.Get(context.Background(), e.URL()+"/volume/v3/"+e.ProjectID("second")+"/volumes", nil, nil)
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("foreign project: %v", err)
	}
	// The project segment is optional.
	_, err = c.vol.Get(context.Background(), e.URL()+"/volume/v3/volumes", nil, nil)
	if err != nil {
		t.Fatalf("without project id: %v", err)
	}
}
