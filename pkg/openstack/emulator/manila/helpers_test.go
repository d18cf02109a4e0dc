package manila_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shareaccessrules"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/snapshots"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func start(t *testing.T, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	e, err := emulator.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// client is a gophercloud shared file systems client of user demo at mv.
func client(t *testing.T, e *emulator.Emulator, mv string) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.AuthURL(), Username: "demo", Password: "demo-secret", DomainName: "Default", TenantName: "demo"})
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	c, err := openstack.NewSharedFileSystemV2(p, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("shared file system client: %v", err)
	}
	c.Microversion = mv
	return c
}

// waitFor polls get until done is true (or fails the test after 20 s,
// which only a broken emulator reaches) and returns the states it saw.
func waitFor[T any](t *testing.T, get func() (T, error), state func(T) string, done func(string) bool) (T, []string) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := get()
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		s := state(v)
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		if done(s) {
			return v, seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q after 20s (seen %v)", s, seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func is(states ...string) func(string) bool {
	return func(s string) bool {
		for _, x := range states {
			if s == x {
				return true
			}
		}
		return false
	}
}

func createShare(t *testing.T, c *gophercloud.ServiceClient, opts shares.CreateOpts) *shares.Share {
	t.Helper()
	sh, err := shares.Create(context.Background(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create share: %v", err)
	}
	sh, _ = waitFor(t, func() (*shares.Share, error) { return shares.Get(context.Background(), c, sh.ID).Extract() },
		func(s *shares.Share) string { return s.Status }, is("available", "error"))
	return sh
}

func waitRule(t *testing.T, c *gophercloud.ServiceClient, id string, done func(string) bool) (*shareaccessrules.ShareAccess, []string) {
	t.Helper()
	return waitFor(t, func() (*shareaccessrules.ShareAccess, error) {
		return shareaccessrules.Get(context.Background(), c, id).Extract()
	},
		func(r *shareaccessrules.ShareAccess) string { return r.State }, done)
}

func createSnapshot(t *testing.T, c *gophercloud.ServiceClient, shareID string) *snapshots.Snapshot {
	t.Helper()
	sn, err := snapshots.Create(context.Background(), c, snapshots.CreateOpts{ShareID: shareID, Name: "snap"}).Extract()
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	sn, _ = waitFor(t, func() (*snapshots.Snapshot, error) { return snapshots.Get(context.Background(), c, sn.ID).Extract() },
		func(s *snapshots.Snapshot) string { return s.Status }, is("available", "error"))
	return sn
}

// raw sends one request with the client's token and returns the status
// and the decoded body.
func raw(t *testing.T, c *gophercloud.ServiceClient, method, url, mv string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", c.Token())
	req.Header.Set("Content-Type", "application/json")
	if mv != "" {
		req.Header.Set("X-OpenStack-Manila-API-Version", mv)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

// faultMessage is the message of an OpenStack fault body.
func faultMessage(m map[string]any) string {
	for _, v := range m {
		if inner, ok := v.(map[string]any); ok {
			if s, ok := inner["message"].(string); ok {
				return s
			}
		}
	}
	return ""
}
