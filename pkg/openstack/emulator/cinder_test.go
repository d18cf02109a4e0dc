package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func TestCinderMicroversions(t *testing.T) {
	e := startEmu(t, Options{MaxCinderMicroversion: "3.64"})
	c := newClients(t, e)
	ctx := context.Background()
	mv, err := utils.GetSupportedMicroversions(ctx, c.vol)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if mv.MinMajor != 3 || mv.MinMinor != 0 || mv.MaxMajor != 3 || mv.MaxMinor != 64 {
		t.Fatalf("supported %+v", mv)
	}
	cases := []struct {
		header   string
		wantCode int
		echo     string
	}{
		{"", 200, "volume 3.0"},
		{"volume 3.42", 200, "volume 3.42"},
		{"volume latest", 200, "volume 3.64"},
		{"volume 3.65", 406, ""},
		{"volume 2.0", 406, ""},
		{"volume abc", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.header, func(t *testing.T) {
			r, _ := http.NewRequest("GET", c.vol.Endpoint+"volumes", nil)
			r.Header.Set("X-Auth-Token", c.vol.Token())
			if tc.header != "" {
				r.Header.Set("OpenStack-API-Version", tc.header)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tc.echo != "" && resp.Header.Get("OpenStack-API-Version") != tc.echo {
				t.Fatalf("echo %q", resp.Header.Get("OpenStack-API-Version"))
			}
		})
	}
	// Version documents need no token.
	for _, path := range []string{"/volume/", "/volume/v3/"} {
		resp, err := http.Get(e.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 300 && resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestVolumeCreateValidation(t *testing.T) {
	e := startEmu(t, Options{AvailabilityZones: []string{"zone-a", "zone-b"}})
	c := newClients(t, e)
	ctx := context.Background()
	base := createVolume(t, c.vol, volumes.CreateOpts{Size: 2, Name: "base", AvailabilityZone: "zone-b"})
	cases := []struct {
		name     string
		opts     volumes.CreateOpts
		hints    volumes.SchedulerHintOptsBuilder
		wantCode int
		check    func(*volumes.Volume) string
	}{
		{"defaults", volumes.CreateOpts{Size: 1}, nil, 0, func(v *volumes.Volume) string {
			if v.AvailabilityZone != "zone-a" || v.VolumeType != "__DEFAULT__" {
				return fmt.Sprintf("%+v", v)
			}
			return ""
		}},
		{"ssd type by name in zone-b", volumes.CreateOpts{Size: 1, VolumeType: "ssd", AvailabilityZone: "zone-b"}, nil, 0, func(v *volumes.Volume) string {
			if v.VolumeType != "ssd" || v.AvailabilityZone != "zone-b" {
				return fmt.Sprintf("%+v", v)
			}
			return ""
		}},
		{"multiattach type", volumes.CreateOpts{Size: 1, VolumeType: "multiattach"}, nil, 0, func(v *volumes.Volume) string {
			if !v.Multiattach {
				return "not multiattach"
			}
			return ""
		}},
		{"clone inherits size and zone", volumes.CreateOpts{SourceVolID: base.ID}, nil, 0, func(v *volumes.Volume) string {
			if v.Size != 2 || v.AvailabilityZone != "zone-b" || v.SourceVolID != base.ID {
				return fmt.Sprintf("%+v", v)
			}
			return ""
		}},
		{"same_host hint", volumes.CreateOpts{Size: 1, AvailabilityZone: "zone-b"}, volumes.SchedulerHintOpts{SameHost: []string{base.ID}}, 0, nil},
		{"unknown zone", volumes.CreateOpts{Size: 1, AvailabilityZone: "nowhere"}, nil, 400, nil},
		{"unknown type", volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil, 404, nil},
		{"zero size", volumes.CreateOpts{}, nil, 400, nil},
		{"clone smaller than source", volumes.CreateOpts{Size: 1, SourceVolID: base.ID}, nil, 400, nil},
		{"missing source", volumes.CreateOpts{SourceVolID: "00000000-0000-4000-8000-000000000000"}, nil, 404, nil},
		{"backup_id below 3.47", volumes.CreateOpts{Size: 1, BackupID: "00000000-0000-4000-8000-000000000000"}, nil, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := volumes.Create(ctx, c.vol, tc.opts, tc.hints).Extract()
			if tc.wantCode != 0 {
				if !gophercloud.ResponseCodeIs(err, tc.wantCode) {
					t.Fatalf("want %d, got %v", tc.wantCode, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != "creating" {
				t.Fatalf("initial status %s", v.Status)
			}
			v = waitVolume(t, c.vol, v.ID, "available")
			if tc.check != nil {
				if msg := tc.check(v); msg != "" {
					t.Fatal(msg)
				}
			}
		})
	}
	// A same_host hint naming a volume in another zone leaves no backend.
	v, err := volumes.Create(ctx, c.vol, volumes.CreateOpts{Size: 1, AvailabilityZone: "zone-a"}, volumes.SchedulerHintOpts{SameHost: []string{base.ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c.vol, v.ID, "error")
}

func TestVolumeListFiltersAndPaging(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, Name: fmt.Sprintf("vol-%d", i), Metadata: map[string]string{"idx": fmt.Sprint(i), "owner": "csi"}})
		ids = append(ids, v.ID)
	}
	// Another project's volume never shows up.
	other := newClientsFor(t, e, "second", "second-secret")
	createVolume(t, other.vol, volumes.CreateOpts{Size: 1, Name: "vol-1"})

	count := func(opts volumes.ListOpts) int {
		pages, err := volumes.List(c.vol, opts).AllPages(ctx)
		if err != nil {
			t.Fatalf("list %+v: %v", opts, err)
		}
		vs, err := volumes.ExtractVolumes(pages)
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}
	cases := []struct {
		name string
		opts volumes.ListOpts
		want int
	}{
		{"all", volumes.ListOpts{}, 5},
		{"by name", volumes.ListOpts{Name: "vol-1"}, 1},
		{"by status", volumes.ListOpts{Status: "available"}, 5},
		{"by status none", volumes.ListOpts{Status: "in-use"}, 0},
		{"by metadata", volumes.ListOpts{Metadata: map[string]string{"idx": "3"}}, 1},
		{"by metadata two keys", volumes.ListOpts{Metadata: map[string]string{"idx": "3", "owner": "csi"}}, 1},
		{"by metadata miss", volumes.ListOpts{Metadata: map[string]string{"idx": "9"}}, 0},
		{"paged by 2", volumes.ListOpts{Limit: 2}, 5},
		{"paged by 5", volumes.ListOpts{Limit: 5}, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.opts); got != tc.want {
				t.Fatalf("got %d want %d", got, tc.want)
			}
		})
	}

	// Paging: newest first, next links carry the marker.
	var pagesSeen int
	var order []string
	err := volumes.List(c.vol, volumes.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pagesSeen++
		vs, err := volumes.ExtractVolumes(p)
		for _, v := range vs {
			order = append(order, v.ID)
		}
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	// 5 items by 2: three full-or-partial pages; a full last page would add an empty one.
	if pagesSeen != 3 || len(order) != 5 || order[0] != ids[4] || order[4] != ids[0] {
		t.Fatalf("pages %d order %v ids %v", pagesSeen, order, ids)
	}
	// An unknown marker is Cinder's MarkerNotFound.
	_, err = volumes.List(c.vol, volumes.ListOpts{Marker: "00000000-0000-4000-8000-000000000000"}).AllPages(ctx)
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bad marker: %v", err)
	}

	// Inexact name filtering is not configured in Zed's default
	// resource filters: a non-admin's name~ is 400 from 3.31 (also at
	// 3.34) and ignored below, as on the real cloud.
	raw := func(client *gophercloud.ServiceClient, query string) (int, error) {
		var body struct {
			Volumes []any `json:"volumes"`
		}
		_, err := client.Get(ctx, client.ServiceURL("volumes")+"?"+query, &body, nil)
		return len(body.Volumes), err
	}
	for _, mv := range []string{"3.31", "3.34", "3.70"} {
		if _, err := raw(withMV(c.vol, mv), "name~=vol-"); !gophercloud.ResponseCodeIs(err, 400) {
			t.Fatalf("name~ at %s: %v", mv, err)
		}
	}
	if n, err := raw(withMV(c.vol, "3.30"), "name~=vol-1"); err != nil || n != 5 {
		t.Fatalf("name~ at 3.30 is ignored: %d %v", n, err)
	}
	if _, err := raw(withMV(c.vol, "3.31"), "bogus=1"); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("bogus filter at 3.31: %v", err)
	}
	if n, err := raw(c.vol, "bogus=1"); err != nil || n != 5 {
		t.Fatalf("bogus filter at 3.0 is ignored: %d %v", n, err)
	}
}

func newClientsFor(t *testing.T, e *Emulator, user, pass string) clients {
	t.Helper()
	p, err := openstackAuth(e, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return clientsFrom(t, p)
}

func TestVolumeDeleteAndExtendRules(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})

	// Extend an available volume.
	if err := volumes.ExtendSize(ctx, c.vol, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := waitVolume(t, c.vol, v.ID, "available"); got.Size != 2 {
		eventually(t, "size 2", func() bool { g, _ := volumes.Get(ctx, c.vol, v.ID).Extract(); return g.Size == 2 })
	}
	if err := volumes.ExtendSize(ctx, c.vol, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("same size: %v", err)
	}

	attach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")
	cases := []struct {
		mv   string
		want int
	}{{"", 400}, {"3.41", 400}, {"3.42", 0}}
	for _, tc := range cases {
		cl := c.vol
		if tc.mv != "" {
			cl = withMV(c.vol, tc.mv)
		}
		err := volumes.ExtendSize(ctx, cl, v.ID, volumes.ExtendSizeOpts{NewSize: 3}).ExtractErr()
		if tc.want == 0 && err != nil || tc.want != 0 && !gophercloud.ResponseCodeIs(err, tc.want) {
			t.Fatalf("extend in-use at %q: %v", tc.mv, err)
		}
	}
	eventually(t, "in-use at 3 GiB", func() bool {
		g, _ := volumes.Get(ctx, c.vol, v.ID).Extract()
		return g.Status == "in-use" && g.Size == 3
	})
	detach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "available")

	// A volume with a snapshot cannot be deleted, unless cascade.
	s := createSnapshot(t, c, v.ID, false)
	err := volumes.Delete(ctx, c.vol, v.ID, nil).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 400) || !strings.Contains(err.Error(), "have snapshots") {
		t.Fatalf("delete with snapshot: %v", err)
	}
	if err := volumes.Delete(ctx, c.vol, v.ID, volumes.DeleteOpts{Cascade: true}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c.vol, v.ID)
	if len(e.Snapshots()) != 0 {
		t.Fatalf("snapshot %s left", s)
	}
	// A volume being deleted cannot be deleted again.
	v2 := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	e.SetVolumeStatus(v2.ID, "deleting")
	if err := volumes.Delete(ctx, c.vol, v2.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("delete deleting: %v", err)
	}
	if err := volumes.Delete(ctx, c.vol, "00000000-0000-4000-8000-000000000000", nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("delete missing: %v", err)
	}
}

func TestQuotaLimitsTypesAZ(t *testing.T) {
	e := startEmu(t, Options{QuotaGigabytes: 10, QuotaVolumes: 3})
	c := newClients(t, e)
	ctx := context.Background()
	createVolume(t, c.vol, volumes.CreateOpts{Size: 4})
	createVolume(t, c.vol, volumes.CreateOpts{Size: 4})

	_, err := volumes.Create(ctx, c.vol, volumes.CreateOpts{Size: 4}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) || !strings.Contains(err.Error(), "VolumeSizeExceedsAvailableQuota") {
		t.Fatalf("over gigabytes: %v", err)
	}
	createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	_, err = volumes.Create(ctx, c.vol, volumes.CreateOpts{Size: 1}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 413) || !strings.Contains(err.Error(), "VolumeLimitExceeded") {
		t.Fatalf("over volumes: %v", err)
	}

	pid := e.ProjectID("demo")
	qs, err := quotasets.GetUsage(ctx, c.vol, pid).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if qs.Gigabytes.Limit != 10 || qs.Gigabytes.InUse != 9 || qs.Volumes.InUse != 3 || qs.Volumes.Limit != 3 {
		t.Fatalf("usage %+v", qs)
	}
	plain, err := quotasets.Get(ctx, c.vol, pid).Extract()
	if err != nil || plain.Gigabytes != 10 {
		t.Fatalf("quota %+v %v", plain, err)
	}
	if _, err := quotasets.Get(ctx, c.vol, e.ProjectID("second")).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("other project's quota: %v", err)
	}
	lim, err := limits.Get(ctx, c.vol).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if lim.Absolute.MaxTotalVolumeGigabytes != 10 || lim.Absolute.TotalGigabytesUsed != 9 || lim.Absolute.TotalVolumesUsed != 3 {
		t.Fatalf("limits %+v", lim.Absolute)
	}

	e.AddVolumeType("gold", map[string]string{"volume_backend_name": "gold"})
	pages, err := volumetypes.List(c.vol, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vts, _ := volumetypes.ExtractVolumeTypes(pages)
	names := map[string]map[string]string{}
	for _, vt := range vts {
		names[vt.Name] = vt.ExtraSpecs
	}
	if names["multiattach"]["multiattach"] != "<is> True" || names["gold"] == nil || names["__DEFAULT__"] == nil || names["ssd"] == nil {
		t.Fatalf("types %v", names)
	}
	for _, vt := range vts {
		got, err := volumetypes.Get(ctx, c.vol, vt.ID).Extract()
		if err != nil || got.Name != vt.Name {
			t.Fatalf("get type: %v", err)
		}
		specs, err := volumetypes.ListExtraSpecs(ctx, c.vol, vt.ID).Extract()
		if err != nil || len(specs) != len(vt.ExtraSpecs) {
			t.Fatalf("extra specs: %v %v", specs, err)
		}
	}

	azPages, err := availabilityzones.List(c.vol).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	azs, _ := availabilityzones.ExtractAvailabilityZones(azPages)
	if len(azs) != 1 || azs[0].ZoneName != "nova" || !azs[0].ZoneState.Available {
		t.Fatalf("azs %+v", azs)
	}
}

func TestErrorVolumeLeavesMessage(t *testing.T) {
	e := startEmu(t, Options{Faults: Faults{VolumeErrorRate: 1}})
	c := newClients(t, e)
	ctx := context.Background()
	v, err := volumes.Create(ctx, c.vol, volumes.CreateOpts{Size: 1}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c.vol, v.ID, "error")

	var body struct {
		Messages []struct {
			ResourceUUID string `json:"resource_uuid"`
			ResourceType string `json:"resource_type"`
			UserMessage  string `json:"user_message"`
			ID           string `json:"id"`
		} `json:"messages"`
	}
	// Messages need 3.3.
	if _, err := c.vol.Get(ctx, c.vol.ServiceURL("messages"), &body, nil); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("messages at 3.0: %v", err)
	}
	mc := withMV(c.vol, "3.3")
	if _, err := mc.Get(ctx, mc.ServiceURL("messages")+"?resource_uuid="+v.ID, &body, nil); err != nil {
		t.Fatal(err)
	}
	if len(body.Messages) != 1 || body.Messages[0].ResourceType != "VOLUME" || !strings.Contains(body.Messages[0].UserMessage, "schedule allocate volume") {
		t.Fatalf("messages %+v", body.Messages)
	}
	if _, err := mc.Get(ctx, mc.ServiceURL("messages", body.Messages[0].ID), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Delete(ctx, mc.ServiceURL("messages", body.Messages[0].ID), nil); err != nil {
		t.Fatal(err)
	}
	// An error volume can be deleted.
	if err := volumes.Delete(ctx, c.vol, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c.vol, v.ID)
}

func TestVolumeUpdateAndMetadata(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, Name: "a", Metadata: map[string]string{"k": "v"}})
	name := "b"
	got, err := volumes.Update(ctx, c.vol, v.ID, volumes.UpdateOpts{Name: &name}).Extract()
	if err != nil || got.Name != "b" || got.Metadata["k"] != "v" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if vs := e.Volumes(); len(vs) != 1 || vs[0].Name != "b" || vs[0].DataFile == "" {
		t.Fatalf("view %+v", vs)
	}
}
