// Package rig is the shared part of the end-to-end tests against a real
// OpenStack Zed brought up by ../shared/tools/openstack-rig: the gate that
// keeps them out of plain `go test ./...`, the settings hack/e2e-openstack.sh
// passes in, a raw REST client (Keystone token plus catalog, as gophercloud
// does it) and the HTTP server that serves the rig's metadata files.
package rig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvGate is set by `make e2e-openstack` (hack/e2e-openstack.sh). Without it
// every test here skips, so `go test ./...` never needs a cloud.
const EnvGate = "CINDER_CSI_E2E_OPENSTACK"

// Env is what hack/e2e-openstack.sh prepared.
type Env struct {
	RigDir    string // the rig scripts
	State     string // $RIG_STATE
	CloudConf string // cloud.conf written from up.sh's output
	AuthURL   string
	User      string
	Password  string
	Project   string // a project of its own; User is a plain member
	// Admin credentials, used only to change the project's quota.
	AdminUser, AdminPassword, AdminProject string
	Node1                                  string // server that gets the real hot-plugged devices
	Node2                                  string // second server, attachments stay fake
	DevRoot                                string // the rig's device-link root
}

// scriptDirs are the places the rig scripts may live, relative to the module
// root first.
func scriptDirs() []string {
	dirs := []string{}
	if d := os.Getenv("RIG_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if root := moduleRoot(); root != "" {
		dirs = append(dirs, filepath.Join(root, "..", "shared", "tools", "openstack-rig"))
	}
	return append(dirs, "/work/shared/tools/openstack-rig")
}

func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Require skips unless the gate is set and the rig scripts exist, and
// returns the environment. A missing setting with the gate on is a failure:
// the harness script did not do its part.
func Require(t testing.TB) *Env {
	t.Helper()
	if os.Getenv(EnvGate) == "" {
		t.Skipf("end to end against the openstack-rig: run `make e2e-openstack` (sets %s=1)", EnvGate)
	}
	e := &Env{}
	for _, d := range scriptDirs() {
		if _, err := os.Stat(filepath.Join(d, "up.sh")); err == nil {
			e.RigDir = d
			break
		}
	}
	if e.RigDir == "" {
		t.Skipf("openstack-rig scripts not found (looked in %s)", strings.Join(scriptDirs(), ", "))
	}
	get := func(key, def string) string {
		if v := os.Getenv(key); v != "" {
			return v
		}
		if def == "" {
			t.Fatalf("%s is not set; run through hack/e2e-openstack.sh", key)
		}
		return def
	}
	e.State = get("RIG_STATE", "/var/lib/openstack-rig")
	e.CloudConf = get("E2E_CLOUD_CONF", filepath.Join(e.State, "cloud.conf"))
	e.AuthURL = get("E2E_AUTH_URL", "http://127.0.0.1:5000/v3")
	e.User = get("E2E_USERNAME", "e2e")
	e.Password = get("E2E_PASSWORD", "")
	e.Project = get("E2E_PROJECT", "e2e")
	e.AdminUser = get("E2E_ADMIN_USERNAME", "admin")
	e.AdminPassword = get("E2E_ADMIN_PASSWORD", "rig-admin-pass")
	e.AdminProject = get("E2E_ADMIN_PROJECT", "admin")
	e.Node1 = get("E2E_NODE1_ID", "")
	e.Node2 = get("E2E_NODE2_ID", "")
	e.DevRoot = get("RIG_DEVROOT", filepath.Join(e.State, "dev"))
	return e
}

// Login issues the member's token.
func (e *Env) Login(ctx context.Context) (*Client, error) {
	return Login(ctx, e.AuthURL, e.User, e.Password, e.Project)
}

// AdminLogin issues the admin's token.
func (e *Env) AdminLogin(ctx context.Context) (*Client, error) {
	return Login(ctx, e.AuthURL, e.AdminUser, e.AdminPassword, e.AdminProject)
}

// SetGigabytesQuota sets project's gigabytes quota (admin only on a real
// cloud) and returns the old limit.
func (c *Client) SetGigabytesQuota(ctx context.Context, project string, n int) (old int, err error) {
	r, err := c.Do(ctx, Volume, "GET", "/os-quota-sets/"+project, "3.0", nil)
	if err != nil {
		return 0, err
	}
	if r.Status != 200 {
		return 0, fmt.Errorf("quota get: %d %s", r.Status, r.Body)
	}
	qs, _ := r.JSON()["quota_set"].(map[string]any)
	f, _ := qs["gigabytes"].(float64)
	r, err = c.Do(ctx, Volume, "PUT", "/os-quota-sets/"+project, "3.0", map[string]any{"quota_set": map[string]any{"gigabytes": n}})
	if err != nil {
		return 0, err
	}
	if r.Status != 200 {
		return 0, fmt.Errorf("quota set %d: %d %s", n, r.Status, r.Body)
	}
	return int(f), nil
}

// Client is a raw OpenStack REST client: one token, endpoints from the
// catalog, every call counted. It speaks to the rig and to the emulator
// alike, which is what the differential test needs.
type Client struct {
	HTTP      *http.Client
	Token     string
	ProjectID string
	UserID    string
	Identity  string // the auth URL, ending in /v3
	Volume    string // volumev3 endpoint, project id included
	Compute   string

	mu    sync.Mutex
	calls map[string]int
}

// Login issues a project-scoped token by password and reads the catalog.
func Login(ctx context.Context, authURL, user, password, project string) (*Client, error) {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]string{"name": "Default"}}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]string{"name": "Default"}}},
	}}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(authURL, "/")+"/auth/tokens", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 60 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("token issue: %d %s", resp.StatusCode, data)
	}
	var tok struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
			User    struct{ ID string } `json:"user"`
			Catalog []struct {
				Type      string `json:"type"`
				Endpoints []struct {
					Interface string `json:"interface"`
					URL       string `json:"url"`
				} `json:"endpoints"`
			} `json:"catalog"`
		} `json:"token"`
	}
	if err := json.Unmarshal(data, &tok); err != nil {
		return nil, err
	}
	c := &Client{HTTP: hc, Token: resp.Header.Get("X-Subject-Token"), ProjectID: tok.Token.Project.ID, UserID: tok.Token.User.ID,
		Identity: strings.TrimSuffix(authURL, "/"), calls: map[string]int{}}
	for _, s := range tok.Token.Catalog {
		for _, ep := range s.Endpoints {
			if ep.Interface != "public" {
				continue
			}
			switch s.Type {
			case "volumev3":
				c.Volume = strings.TrimSuffix(ep.URL, "/")
			case "compute":
				c.Compute = strings.TrimSuffix(ep.URL, "/")
			}
		}
	}
	if c.Volume == "" || c.Compute == "" {
		return nil, fmt.Errorf("catalog lacks volumev3 or compute: %s", data)
	}
	return c, nil
}

// Response is one API answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into a generic map (nil when it is not an object).
func (r *Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Service selects the endpoint and the microversion header's service name.
type Service int

// The services a Client calls.
const (
	Volume   Service = iota // Cinder v3
	Compute                 // Nova v2.1
	Identity                // Keystone v3; no microversion
)

// Do sends one call. mv is the microversion ("" sends none).
func (c *Client) Do(ctx context.Context, svc Service, method, path, mv string, body any) (*Response, error) {
	return c.DoWithToken(ctx, c.Token, svc, method, path, mv, body)
}

// DoWithToken is Do with another token (or none, for "").
func (c *Client) DoWithToken(ctx context.Context, token string, svc Service, method, path, mv string, body any) (*Response, error) {
	base, mvName := c.Volume, "volume"
	switch svc {
	case Compute:
		base, mvName = c.Compute, "compute"
	case Identity:
		base, mvName, mv = c.Identity, "identity", ""
	}
	header := http.Header{}
	if token != "" {
		header.Set("X-Auth-Token", token)
	}
	if mv != "" {
		header.Set("OpenStack-API-Version", mvName+" "+mv)
		if svc == Compute {
			header.Set("X-OpenStack-Nova-API-Version", mv)
		}
	}
	c.mu.Lock()
	c.calls[method+" "+mvName]++
	c.mu.Unlock()
	return SendJSON(ctx, c.HTTP, method, base+path, body, header)
}

// SendJSON sends one call with header, body (when not nil) as JSON, and
// reads the whole answer.
func SendJSON(ctx context.Context, hc *http.Client, method, url string, body any, header http.Header) (*Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Body: data, Header: resp.Header}, nil
}

// Calls returns the number of API calls made so far.
func (c *Client) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// ServeMetadata serves dir (a server's metadata directory from the rig,
// holding openstack/latest/meta_data.json) over HTTP on 127.0.0.1 and
// returns the meta_data.json URL: the rig writes files only, and this
// kernel cannot mount a config drive.
func ServeMetadata(t testing.TB, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/openstack/latest/meta_data.json"
}

// NewUUID returns a random version-4 UUID.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// EnsureGroupType makes sure the cloud has the Cinder group type name with
// consistent_group_snapshot_enabled (admin is an administrator's client):
// the rig's configuration for volume group snapshots, created when
// missing and kept.
func EnsureGroupType(ctx context.Context, admin *Client, name string) error {
	r, err := admin.Do(ctx, Volume, "GET", "/group_types", "3.11", nil)
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fmt.Errorf("listing group types: HTTP %d: %s", r.Status, r.Body)
	}
	if list, ok := r.JSON()["group_types"].([]any); ok {
		for _, x := range list {
			if m, _ := x.(map[string]any); m["name"] == name {
				return nil
			}
		}
	}
	r, err = admin.Do(ctx, Volume, "POST", "/group_types", "3.11", map[string]any{"group_type": map[string]any{
		"name": name, "group_specs": map[string]string{"consistent_group_snapshot_enabled": "<is> True"}}})
	if err != nil {
		return err
	}
	if r.Status != 200 && r.Status != 202 {
		return fmt.Errorf("creating group type %s: HTTP %d: %s", name, r.Status, r.Body)
	}
	return nil
}
