package manila_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/messages"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/sharetypes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

var ctx = context.Background()

func TestCatalogAndVersions(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	if !strings.HasSuffix(strings.TrimSuffix(c.Endpoint, "/"), "/share/v2/"+e.ProjectID("demo")) {
		t.Errorf("endpoint %s", c.Endpoint)
	}
	code, body, _ := raw(t, c, "GET", e.URL()+"/share/", "", nil)
	if code != http.StatusMultipleChoices || len(body["versions"].([]any)) != 2 {
		t.Errorf("versions: %d %v", code, body)
	}
	code, body, hdr := raw(t, c, "GET", e.URL()+"/share/v2/", "", nil)
	v := body["versions"].([]any)[0].(map[string]any)
	if code != 200 || v["version"] != "2.73" || v["min_version"] != "2.0" || hdr.Get("X-OpenStack-Manila-API-Version") != "2.0" {
		t.Errorf("v2: %d %v %v", code, v, hdr)
	}
}

func TestMicroversionHeader(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "")
	url := c.ServiceURL("shares")
	for _, tc := range []struct {
		mv, echo string
		code     int
		msg      string
	}{
		{"", "2.0", 200, ""},
		{"2.45", "2.45", 200, ""},
		{"2.73", "2.73", 200, ""},
		{"2.74", "2.74", 406, "Version %(req_ver)s is not supported by the API. Minimum is %(min_ver)s and maximum is %(max_ver)s."},
		{"1.5", "1.5", 406, "Version %(req_ver)s is not supported by the API. Minimum is %(min_ver)s and maximum is %(max_ver)s."},
		{"abc", "", 400, "API Version String %(version)s is of invalid format. Must be of format MajorNum.MinorNum."},
		{"latest", "", 400, "API Version String %(version)s is of invalid format. Must be of format MajorNum.MinorNum."},
	} {
		t.Run("mv="+tc.mv, func(t *testing.T) {
			code, body, hdr := raw(t, c, "GET", url, tc.mv, nil)
			if code != tc.code || faultMessage(body) != tc.msg || hdr.Get("X-OpenStack-Manila-API-Version") != tc.echo {
				t.Errorf("got %d %q echo %q", code, faultMessage(body), hdr.Get("X-OpenStack-Manila-API-Version"))
			}
		})
	}
}

func TestURLsWithAndWithoutProjectID(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype"})
	for _, tc := range []struct {
		name, url string
		code      int
	}{
		{"with the project id", e.URL() + "/share/v2/" + e.ProjectID("demo") + "/shares/" + sh.ID, 200},
		{"without it (2.60)", e.URL() + "/share/v2/shares/" + sh.ID, 200},
		{"another project's id", e.URL() + "/share/v2/" + e.ProjectID("second") + "/shares/" + sh.ID, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body, _ := raw(t, c, "GET", tc.url, "2.60", nil); code != tc.code {
				t.Errorf("%d %v", code, body)
			}
		})
	}
}

var nfsPath = regexp.MustCompile(`^127\.0\.0\.1:/volumes/_nogroup/[0-9a-f-]{36}/[0-9a-f-]{36}$`)
var cephPath = regexp.MustCompile(`^127\.0\.0\.1:6789:/volumes/_nogroup/[0-9a-f-]{36}/[0-9a-f-]{36}$`)

func TestShareLifecycleAndDirectory(t *testing.T) {
	for _, tc := range []struct {
		proto, shareType string
		path             *regexp.Regexp
	}{
		{"NFS", "cephfsnfstype", nfsPath},
		{"CEPHFS", "cephfstype", cephPath},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			e := start(t, emulator.Options{})
			c := client(t, e, "2.73")
			created, err := shares.Create(ctx, c, shares.CreateOpts{ShareProto: tc.proto, Size: 1, Name: "a", ShareType: tc.shareType,
				Metadata: map[string]string{"k": "v"}}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if created.Status != "creating" || created.AvailabilityZone != "" {
				t.Errorf("create answered %s in %q", created.Status, created.AvailabilityZone)
			}
			sh := createShare(t, c, shares.CreateOpts{ShareProto: tc.proto, Size: 1, ShareType: tc.shareType})
			if sh.Status != "available" || sh.AvailabilityZone != "nova" || sh.ShareTypeName != tc.shareType {
				t.Fatalf("share %+v", sh)
			}
			els, err := shares.ListExportLocations(ctx, c, sh.ID).Extract()
			if err != nil || len(els) != 1 || !tc.path.MatchString(els[0].Path) {
				t.Fatalf("export locations %+v %v", els, err)
			}
			dir, ok := e.ShareDir(sh.ID)
			if byExport, ok2 := e.ShareDirByExport(els[0].Path); !ok || !ok2 || dir != byExport {
				t.Fatalf("share dir %q %v, by export %q %v", dir, ok, byExport, ok2)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("share dir: %v", err)
			}
			if err := shares.Delete(ctx, c, sh.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() (string, error) {
				_, err := shares.Get(ctx, c, sh.ID).Extract()
				if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					return "gone", nil
				}
				return "there", err
			}, func(s string) string { return s }, is("gone"))
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("share dir left after delete: %v", err)
			}
		})
	}
}

func TestCreateShareRefusals(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	e.Manila().SetQuota(e.ProjectID("demo"), manila.Quota{Shares: 50, Gigabytes: 10, Snapshots: 50, SnapshotGigabytes: 10, ShareNetworks: 10, PerShareGigabytes: -1})
	for _, tc := range []struct {
		name string
		body map[string]any
		code int
		msg  string
	}{
		{"unknown type", map[string]any{"share_proto": "NFS", "size": 1, "share_type": "no-such-type"}, 404, "Share type not found."},
		{"protocol not enabled", map[string]any{"share_proto": "GLUSTERFS", "size": 1}, 400,
			"Invalid input received: Invalid share protocol provided: GLUSTERFS. It is either disabled or unsupported. Available protocols: ['CEPHFS', 'NFS']."},
		{"size zero", map[string]any{"share_proto": "NFS", "size": 0}, 400, "Invalid input received: Share size '0' must be an integer and greater than 0."},
		{"over the gigabytes quota", map[string]any{"share_proto": "NFS", "size": 11}, 413,
			"ShareSizeExceedsAvailableQuota: Requested share exceeds allowed project/user or share type gigabytes quota."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := raw(t, c, "POST", c.ServiceURL("shares"), "2.73", map[string]any{"share": tc.body})
			if code != tc.code || faultMessage(body) != tc.msg {
				t.Errorf("got %d %q", code, faultMessage(body))
			}
		})
	}
}

func TestShareOfTheWrongProtocolFailsWithAMessage(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfstype"})
	if sh.Status != "error" {
		t.Fatalf("status %s, want error", sh.Status)
	}
	pages, err := messages.List(c, messages.ListOpts{ResourceID: sh.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := messages.ExtractMessages(pages)
	if len(ms) != 1 || ms[0].UserMessage != "allocate host: No storage could be allocated for this share request, Capabilities filter didn't succeed." {
		t.Errorf("messages %+v", ms)
	}
	if err := shares.Delete(ctx, c, sh.ID).ExtractErr(); err != nil {
		t.Errorf("a share in error is deletable: %v", err)
	}
}

func TestDeleteOfAShareWithSnapshotsIsForbidden(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
	createSnapshot(t, c, sh.ID)
	code, body, _ := raw(t, c, "DELETE", c.ServiceURL("shares", sh.ID), "2.73", nil)
	if code != http.StatusForbidden || faultMessage(body) != "Invalid share: %(reason)s." {
		t.Errorf("got %d %v", code, body)
	}
}

func TestSnapshotAndShareFromSnapshotCopyData(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype"})
	dir, _ := e.ShareDir(sh.ID)
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	sn := createSnapshot(t, c, sh.ID)
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("after"), 0o644); err != nil {
		t.Fatal(err)
	}
	created, err := shares.Create(ctx, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, SnapshotID: sn.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	restored, states := waitFor(t, func() (*shares.Share, error) { return shares.Get(ctx, c, created.ID).Extract() },
		func(s *shares.Share) string { return s.Status }, is("available", "error"))
	if restored.Status != "available" || restored.SnapshotID != sn.ID || restored.ShareTypeName != "cephfsnfstype" {
		t.Fatalf("restored %+v (states %v)", restored, states)
	}
	rdir, _ := e.ShareDir(restored.ID)
	if b, err := os.ReadFile(filepath.Join(rdir, "hello")); err != nil || string(b) != "before" {
		t.Errorf("restored content %q %v, want the snapshot's", b, err)
	}
}

func TestExtendAndShrink(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1})
	get := func() (*shares.Share, error) { return shares.Get(ctx, c, sh.ID).Extract() }
	status := func(s *shares.Share) string { return s.Status }
	if err := shares.Extend(ctx, c, sh.ID, shares.ExtendOpts{NewSize: 3}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got, _ := waitFor(t, get, status, is("available")); got.Size != 3 {
		t.Errorf("size after extend %d", got.Size)
	}
	for _, tc := range []struct {
		name, action string
		size         int
		msg          string
	}{
		{"extend to the same size", "extend", 3, "Invalid input received: New size for extend must be greater than current size. (current: 3, extended: 3)."},
		{"shrink to a bigger size", "shrink", 5, "Invalid input received: New size for shrink must be less than current size and greater than 0 (current: 3, new: 5)."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := raw(t, c, "POST", c.ServiceURL("shares", sh.ID, "action"), "2.73", map[string]any{tc.action: map[string]any{"new_size": tc.size}})
			if code != 400 || faultMessage(body) != tc.msg {
				t.Errorf("got %d %q", code, faultMessage(body))
			}
		})
	}
	if err := shares.Shrink(ctx, c, sh.ID, shares.ShrinkOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got, _ := waitFor(t, get, status, is("available")); got.Size != 2 {
		t.Errorf("size after shrink %d", got.Size)
	}
}

func TestShrinkBelowUsedKeepsTheSizeAndSaysWhy(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 2})
	dir, _ := e.ShareDir(sh.ID)
	// A sparse file counts by its size, as the CephFS subvolume's used bytes do.
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1<<30 + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := shares.Shrink(ctx, c, sh.ID, shares.ShrinkOpts{NewSize: 1}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, _ := waitFor(t, func() (*shares.Share, error) { return shares.Get(ctx, c, sh.ID).Extract() },
		func(s *shares.Share) string { return s.Status }, is("available"))
	if got.Size != 2 {
		t.Errorf("size %d after a refused shrink, want 2", got.Size)
	}
	pages, _ := messages.List(c, messages.ListOpts{ResourceID: sh.ID}).AllPages(ctx)
	ms, _ := messages.ExtractMessages(pages)
	if len(ms) != 1 || ms[0].ActionID != "009" || ms[0].DetailID != "018" {
		t.Errorf("messages %+v", ms)
	}
}

func TestShareTypesAndZones(t *testing.T) {
	e := start(t, emulator.Options{AvailabilityZones: []string{"nova", "zone-b"}})
	c := client(t, e, "2.73")
	pages, err := sharetypes.List(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	types, _ := sharetypes.ExtractShareTypes(pages)
	var names []string
	for _, ty := range types {
		names = append(names, ty.Name)
		if ty.ExtraSpecs["driver_handles_share_servers"] != "False" || ty.ExtraSpecs["snapshot_support"] != "True" ||
			ty.ExtraSpecs["create_share_from_snapshot_support"] != "True" || ty.ExtraSpecs["share_backend_name"] != nil {
			t.Errorf("type %s extra specs %v", ty.Name, ty.ExtraSpecs)
		}
	}
	if !slices.Equal(names, []string{"cephfsnfstype", "cephfstype"}) {
		t.Errorf("types %v", names)
	}
	def, err := sharetypes.GetDefault(ctx, c).Extract()
	if err != nil || def.Name != "cephfstype" {
		t.Errorf("default %+v %v", def, err)
	}
	_, err = sharetypes.GetExtraSpecs(ctx, c, manila.CephFSTypeID).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("extra specs of a type as a member: %v, want 403", err)
	}
	// gophercloud lists zones at /os-availability-zone, which Zed serves
	// only below 2.7 (checked on the rig: 404 from 2.7 on).
	if _, err := availabilityzones.List(c).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("os-availability-zone at 2.73: %v, want 404", err)
	}
	azPages, err := availabilityzones.List(client(t, e, "2.6")).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	azs, _ := availabilityzones.ExtractAvailabilityZones(azPages)
	if len(azs) != 2 || azs[0].Name != "nova" || azs[1].Name != "zone-b" {
		t.Errorf("zones %+v", azs)
	}
	if code, body, _ := raw(t, c, "GET", c.ServiceURL("availability-zones"), "2.7", nil); code != 200 || len(body["availability_zones"].([]any)) != 2 {
		t.Errorf("availability-zones at 2.7: %d %v", code, body)
	}
}

func TestShareNetworkOnATypeWithoutShareServersEndsUndeletable(t *testing.T) {
	e := start(t, emulator.Options{})
	c := client(t, e, "2.73")
	code, body, _ := raw(t, c, "POST", c.ServiceURL("share-networks"), "2.73", map[string]any{"share_network": map[string]any{"name": "net"}})
	if code != 200 {
		t.Fatalf("share network create: %d %v", code, body)
	}
	net := body["share_network"].(map[string]any)["id"].(string)
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype", ShareNetworkID: net})
	if sh.Status != "error" {
		t.Fatalf("status %s, want error", sh.Status)
	}
	pages, _ := messages.List(c, messages.ListOpts{ResourceID: sh.ID}).AllPages(ctx)
	ms, _ := messages.ExtractMessages(pages)
	if len(ms) != 1 || ms[0].UserMessage != "create: Driver does not expect share-network to be provided with current configuration." {
		t.Errorf("messages %+v", ms)
	}
	if err := shares.Delete(ctx, c, sh.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, _ := waitFor(t, func() (*shares.Share, error) { return shares.Get(ctx, c, sh.ID).Extract() },
		func(s *shares.Share) string { return s.Status }, is("error_deleting"))
	if got.Status != "error_deleting" {
		t.Fatalf("status %s", got.Status)
	}
	if !e.Manila().ForceDeleteShare(sh.ID) {
		t.Fatal("ForceDeleteShare refused")
	}
	if _, err := shares.Get(ctx, c, sh.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("after force delete: %v", err)
	}
}
