package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

func TestInjectedFaults(t *testing.T) {
	cases := []struct {
		name       string
		faults     Faults
		wantCodes  map[int]bool
		retryAfter string
	}{
		{"error rate", Faults{ErrorRate: 1}, map[int]bool{500: true, 503: true}, ""},
		{"rate limit", Faults{RateLimitRate: 1, RetryAfter: 2500 * time.Millisecond}, map[int]bool{429: true}, "3"},
		{"rate limit default retry", Faults{RateLimitRate: 1}, map[int]bool{429: true}, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startEmu(t, Options{Seed: 7})
			c := newClients(t, e)
			e.SetFaults(tc.faults)
			e.ResetCounters()
			seen := map[int]bool{}
			for i := 0; i < 20; i++ {
				r, _ := http.NewRequest("GET", c.vol.Endpoint+"volumes/detail", nil)
				r.Header.Set("X-Auth-Token", c.vol.Token())
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if !tc.wantCodes[resp.StatusCode] {
					t.Fatalf("status %d", resp.StatusCode)
				}
				seen[resp.StatusCode] = true
				if tc.retryAfter != "" && resp.Header.Get("Retry-After") != tc.retryAfter {
					t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
				}
				if resp.Header.Get("X-Openstack-Request-Id") == "" {
					t.Fatal("no request id")
				}
			}
			if len(seen) != len(tc.wantCodes) {
				t.Fatalf("saw %v", seen)
			}
			if got := e.Counters()["GET /volume/v3/{project_id}/volumes/detail"]; got != 20 || e.TotalCalls() != 20 {
				t.Fatalf("faulted calls counted %d total %d", got, e.TotalCalls())
			}
			// Admin and metadata endpoints are never faulted or counted.
			resp, err := http.Get(e.URL() + "/admin/counters")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("admin: %v", err)
			}
			resp.Body.Close()
			resp, err = http.Get(e.URL() + "/openstack/latest/meta_data.json")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("metadata: %v", err)
			}
			resp.Body.Close()
			if e.TotalCalls() != 20 {
				t.Fatalf("total %d", e.TotalCalls())
			}
		})
	}
}

func TestFaultOnlyPaths(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	e.SetFaults(Faults{ErrorRate: 1, OnlyPaths: []string{"POST /compute/v2.1/servers/{server_id}/os-volume_attachments"}})
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	_, err := volumeattach.Create(ctx, c.compute, DefaultServerID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	if code := statusOf(err); code != 500 && code != 503 {
		t.Fatalf("attach under fault: %v", err)
	}
	if len(e.Attachments()) != 0 {
		t.Fatal("a faulted attach changed state")
	}
}

func TestRateLimitRPS(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	e.SetFaults(Faults{RateLimitRPS: 2, RetryAfter: time.Second})
	limited := 0
	for i := 0; i < 10; i++ {
		_, err := c.vol.Get(context.Background(), c.vol.ServiceURL("volumes"), nil, nil)
		if gophercloud.ResponseCodeIs(err, http.StatusTooManyRequests) {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// The bucket holds 2 tokens and refills at 2/s; ten back-to-back calls
	// cannot all pass.
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
	// The other project has its own bucket.
	other := newClientsFor(t, e, "second", "second-secret")
	if _, err := other.vol.Get(context.Background(), other.vol.ServiceURL("volumes"), nil, nil); err != nil && !gophercloud.ResponseCodeIs(err, 429) {
		t.Fatal(err)
	}
}

func TestAdminAPI(t *testing.T) {
	e := startEmu(t, Options{})
	do := func(method, path, body string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(method, e.URL()+path, bytes.NewBufferString(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := do("PUT", "/admin/faults", `{"error_rate":0.25,"retry_after":"3s","stuck_attaching":true,"only_paths":["GET /compute/v2.1/servers"]}`); r.StatusCode != 200 {
		t.Fatalf("put faults %d", r.StatusCode)
	}
	f := e.CurrentFaults()
	if f.ErrorRate != 0.25 || f.RetryAfter != 3*time.Second || !f.StuckAttaching || len(f.OnlyPaths) != 1 {
		t.Fatalf("faults %+v", f)
	}
	if r := do("PUT", "/admin/latency", `{"attach":"20ms"}`); r.StatusCode != 200 {
		t.Fatalf("put latency %d", r.StatusCode)
	}
	if e.Latencies()["attach"] != 20*time.Millisecond {
		t.Fatalf("latency %v", e.Latencies())
	}
	if r := do("PUT", "/admin/latency", `{"teleport":"1s"}`); r.StatusCode != 400 {
		t.Fatalf("unknown op accepted")
	}
	e.SetFaults(Faults{})
	newClients(t, e)
	r := do("GET", "/admin/counters", "")
	var counters struct {
		Total    int64            `json:"total"`
		Counters map[string]int64 `json:"counters"`
	}
	if err := json.NewDecoder(r.Body).Decode(&counters); err != nil || counters.Total == 0 || counters.Counters["POST /identity/v3/auth/tokens"] != 1 {
		t.Fatalf("counters %+v %v", counters, err)
	}
	if r := do("POST", "/admin/counters/reset", ""); r.StatusCode != 204 || e.TotalCalls() != 0 {
		t.Fatalf("reset %d", r.StatusCode)
	}
	r = do("GET", "/admin/state", "")
	var st map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || st["servers"] == nil {
		t.Fatalf("state %v", err)
	}
	if r := do("POST", "/admin/servers", `{"ID":"","Name":"node-9","AZ":"nova"}`); r.StatusCode != 201 || len(e.Servers()) != 2 {
		t.Fatalf("add server %d", r.StatusCode)
	}
	if r := do("GET", "/admin/cloud.conf?user=second&section=Global%20%22b%22", ""); r.StatusCode != 200 {
		t.Fatalf("cloud.conf %d", r.StatusCode)
	}
}

// TestConcurrentClients exercises the locking under -race: several clients
// create, attach, detach and delete volumes at once.
func TestConcurrentClients(t *testing.T) {
	servers := []ServerSpec{}
	for i := 0; i < 4; i++ {
		servers = append(servers, ServerSpec{ID: newUUID(), Name: fmt.Sprintf("node-%d", i), AZ: "nova"})
	}
	e := startEmu(t, Options{Servers: servers})
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	for _, s := range servers {
		wg.Add(1)
		go func(serverID string) {
			defer wg.Done()
			c := newClients(t, e)
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				v, err := volumes.Create(ctx, c.vol, volumes.CreateOpts{Size: 1}, nil).Extract()
				if err != nil {
					errs <- err
					return
				}
				for {
					g, err := volumes.Get(ctx, c.vol, v.ID).Extract()
					if err != nil {
						errs <- err
						return
					}
					if g.Status == "available" {
						break
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := volumeattach.Create(ctx, c.compute, serverID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract(); err != nil {
					errs <- err
					return
				}
				for {
					g, _ := volumes.Get(ctx, c.vol, v.ID).Extract()
					if g.Status == "in-use" {
						break
					}
					time.Sleep(time.Millisecond)
				}
				if err := volumeattach.Delete(ctx, c.compute, serverID, v.ID).ExtractErr(); err != nil {
					errs <- err
					return
				}
				for {
					g, _ := volumes.Get(ctx, c.vol, v.ID).Extract()
					if g.Status == "available" {
						break
					}
					time.Sleep(time.Millisecond)
				}
				if err := volumes.Delete(ctx, c.vol, v.ID, nil).ExtractErr(); err != nil {
					errs <- err
					return
				}
			}
		}(s.ID)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "all volumes gone", func() bool { return len(e.Volumes()) == 0 && len(e.Attachments()) == 0 })
}
