package manila_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/messages"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

func TestFaultsReachManila(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults host.Faults
		check  func(t *testing.T, e *emulator.Emulator, c *gophercloud.ServiceClient)
	}{
		{"injected 500/503 on a share path", host.Faults{ErrorRate: 1, OnlyPaths: []string{"GET /share/v2/{project_id}/shares/detail"}},
			func(t *testing.T, _ *emulator.Emulator, c *gophercloud.ServiceClient) {
				_, err := shares.ListDetail(c, nil).AllPages(ctx)
				if !gophercloud.ResponseCodeIs(err, 500) && !gophercloud.ResponseCodeIs(err, 503) {
					t.Errorf("list: %v, want 500 or 503", err)
				}
			}},
		{"share_error_rate", host.Faults{ShareErrorRate: 1},
			func(t *testing.T, _ *emulator.Emulator, c *gophercloud.ServiceClient) {
				if sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1}); sh.Status != "error" {
					t.Errorf("status %s, want error", sh.Status)
				}
			}},
		{"share_extend_error_rate", host.Faults{ShareExtendErrorRate: 1},
			func(t *testing.T, _ *emulator.Emulator, c *gophercloud.ServiceClient) {
				sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
				if err := shares.Extend(ctx, c, sh.ID, shares.ExtendOpts{NewSize: 2}).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				got, _ := waitFor(t, func() (*shares.Share, error) { return shares.Get(ctx, c, sh.ID).Extract() },
					func(s *shares.Share) string { return s.Status }, is("available", "extending_error"))
				pages, _ := messages.List(c, messages.ListOpts{ResourceID: sh.ID}).AllPages(ctx)
				ms, _ := messages.ExtractMessages(pages)
				if got.Status != "extending_error" || got.Size != 1 || len(ms) != 1 || ms[0].DetailID != "015" {
					t.Errorf("share %s size %d, messages %+v", got.Status, got.Size, ms)
				}
			}},
		{"access_rule_error_rate", host.Faults{AccessRuleErrorRate: 1},
			func(t *testing.T, _ *emulator.Emulator, c *gophercloud.ServiceClient) {
				sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
				r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "cephx", AccessTo: "x", AccessLevel: "rw"}).Extract()
				if err != nil {
					t.Fatal(err)
				}
				if rule, _ := waitRule(t, c, r.ID, is("active", "error")); rule.State != "error" || rule.AccessKey != "" {
					t.Errorf("rule %+v", rule)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, emulator.Options{})
			c := client(t, e, "2.73")
			e.SetFaults(tc.faults)
			tc.check(t, e, c)
		})
	}
}

func TestCountersNameManilaTemplates(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
	got := e.Counters()
	if got["POST /share/v2/{project_id}/shares"] != 1 || got["GET /share/v2/{project_id}/shares/{share_id}"] == 0 {
		t.Errorf("counters %v", got)
	}
}

func TestAdminAPI(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype"})
	admin := func(method, path string, body any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, e.URL()+"/admin/manila"+path, bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
	}{
		{"share status", "PUT", "/shares/" + sh.ID + "/status", map[string]string{"status": "error_deleting"}, 204},
		{"unknown share's status", "PUT", "/shares/" + manila.CephFSTypeID + "/status", map[string]string{"status": "error"}, 404},
		{"quota", "PUT", "/quotas/demo", map[string]int{"gigabytes": 7}, 200},
		{"share type", "POST", "/share-types", map[string]any{"Name": "gold", "Protocol": "NFS"}, 200},
		{"share type without a name", "POST", "/share-types", map[string]any{}, 400},
		{"force delete", "DELETE", "/shares/" + sh.ID, nil, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := admin(tc.method, tc.path, tc.body); code != tc.code {
				t.Errorf("got %d, want %d", code, tc.code)
			}
		})
	}
	if q := e.Manila().QuotaOf(e.ProjectID("demo")); q.Gigabytes != 7 || q.Shares != 50 {
		t.Errorf("quota %+v", q)
	}
	if len(e.Manila().Shares()) != 0 {
		t.Errorf("shares left %+v", e.Manila().Shares())
	}
}
