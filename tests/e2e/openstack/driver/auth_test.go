package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// TestAuthOnRealKeystone runs the cloud layer's credential variants against
// the rig's Keystone: password, application credential, trust, and a
// rotation that deletes the old application credential under a running
// cloud (its tokens then fail, and the layer must re-read the file).
func TestAuthOnRealKeystone(t *testing.T) {
	env := rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	member, err := env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "e2e-auth-" + rig.NewUUID()[:8] + "-"
	newCred := func(name string) (id, secret string) {
		t.Helper()
		secret = "s-" + rig.NewUUID()
		r, err := member.Do(ctx, rig.Identity, "POST", "/users/"+member.UserID+"/application_credentials", "",
			map[string]any{"application_credential": map[string]any{"name": prefix + name, "secret": secret}})
		if err != nil || r.Status != 201 {
			t.Fatalf("creating an application credential: %v %v", r, err)
		}
		id = str(r.JSON()["application_credential"], "id")
		t.Cleanup(func() {
			_, _ = member.Do(context.Background(), rig.Identity, "DELETE", "/users/"+member.UserID+"/application_credentials/"+id, "", nil)
		})
		return id, secret
	}
	r, err := member.Do(ctx, rig.Identity, "POST", "/OS-TRUST/trusts", "", map[string]any{"trust": map[string]any{
		"trustor_user_id": member.UserID, "trustee_user_id": admin.UserID, "project_id": member.ProjectID,
		"impersonation": false, "roles": []any{map[string]any{"name": "member"}}}})
	if err != nil || r.Status != 201 {
		t.Fatalf("creating a trust: %v %v", r, err)
	}
	trustID := str(r.JSON()["trust"], "id")
	t.Cleanup(func() {
		_, _ = member.Do(context.Background(), rig.Identity, "DELETE", "/OS-TRUST/trusts/"+trustID, "", nil)
	})

	base := fmt.Sprintf("[Global]\nauth-url = %s\nregion = RegionOne\n", env.AuthURL)
	dir := t.TempDir()
	conf := func(name, keys string) string {
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(base+keys), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	listIn := func(t *testing.T, s *openstack.CloudSet) {
		t.Helper()
		c, err := s.Get("")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListVolumes(ctx, openstack.ListOpts{}); err != nil {
			t.Fatalf("ListVolumes: %v", err)
		}
	}
	credID, credSecret := newCred("one")
	for name, keys := range map[string]string{
		"password":               fmt.Sprintf("username = %s\npassword = %s\nuser-domain-name = Default\ntenant-name = %s\ntenant-domain-name = Default\n", env.User, env.Password, env.Project),
		"application credential": fmt.Sprintf("application-credential-id = %s\napplication-credential-secret = %s\n", credID, credSecret),
		"trust":                  fmt.Sprintf("trust-id = %s\ntrustee-id = %s\ntrustee-password = %s\n", trustID, admin.UserID, env.AdminPassword),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := openstack.NewClouds(ctx, []string{conf(strings.ReplaceAll(name, " ", "-"), keys)}, openstack.Options{ReloadInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			listIn(t, s)
		})
	}

	t.Run("rotation by deleting the old application credential", func(t *testing.T) {
		oldID, oldSecret := newCred("old")
		path := conf("rotating", fmt.Sprintf("application-credential-id = %s\napplication-credential-secret = %s\n", oldID, oldSecret))
		s, err := openstack.NewClouds(ctx, []string{path}, openstack.Options{ReloadInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		listIn(t, s)
		newID, newSecret := newCred("new")
		conf("rotating", fmt.Sprintf("application-credential-id = %s\napplication-credential-secret = %s\n", newID, newSecret))
		if r, err := member.Do(ctx, rig.Identity, "DELETE", "/users/"+member.UserID+"/application_credentials/"+oldID, "", nil); err != nil || r.Status != 204 {
			t.Fatalf("deleting the old credential: %v %v", r, err)
		}
		listIn(t, s)
	})
}

func str(m any, key string) string {
	if mm, ok := m.(map[string]any); ok {
		if s, ok := mm[key].(string); ok {
			return s
		}
	}
	return ""
}
