package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
)

const node2 = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"

func twoNodes() Options {
	return Options{
		AvailabilityZones: []string{"az1", "az2"},
		Servers: []ServerSpec{
			{ID: DefaultServerID, Name: "node-1", AZ: "az1", Local: true},
			{ID: node2, Name: "node-2", AZ: "az2"},
		},
	}
}

func TestNovaServersAndVersions(t *testing.T) {
	e := startEmu(t, twoNodes())
	c := newClients(t, e)
	ctx := context.Background()
	mv, err := utils.GetSupportedMicroversions(ctx, c.compute)
	if err != nil || mv.MaxMinor != 96 || mv.MinMinor != 1 {
		t.Fatalf("nova microversions %+v %v", mv, err)
	}
	s, err := servers.Get(ctx, c.compute, node2).Extract()
	if err != nil || s.Name != "node-2" || s.AvailabilityZone != "az2" || s.Status != "ACTIVE" {
		t.Fatalf("server %+v %v", s, err)
	}
	if _, err := servers.Get(ctx, c.compute, "00000000-0000-4000-8000-000000000000").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("missing server: %v", err)
	}
	pages, err := servers.List(c.compute, servers.ListOpts{Name: "node-2"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := servers.ExtractServers(pages)
	if len(all) != 1 || all[0].ID != node2 {
		t.Fatalf("list by name %+v", all)
	}
	// Too new a microversion is 406.
	if _, err := servers.Get(ctx, withMV(c.compute, "2.97"), node2).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable) {
		t.Fatalf("2.97: %v", err)
	}
}

func TestAttachRules(t *testing.T) {
	e := startEmu(t, twoNodes())
	c := newClients(t, e)
	ctx := context.Background()
	multi := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, VolumeType: "multiattach", AvailabilityZone: "az1"})
	plain := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, AvailabilityZone: "az1"})

	// Multiattach volumes need 2.60.
	_, err := volumeattach.Create(ctx, c.compute, DefaultServerID, volumeattach.CreateOpts{VolumeID: multi.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("multiattach below 2.60: %v", err)
	}
	c60 := clients{vol: c.vol, compute: withMV(c.compute, "2.60")}
	attach(t, c60, DefaultServerID, multi.ID)
	attach(t, c60, node2, multi.ID)
	eventually(t, "multiattach in-use on two servers", func() bool {
		v, _ := volumes.Get(ctx, c.vol, multi.ID).Extract()
		return v.Status == "in-use" && len(v.Attachments) == 2
	})

	// A plain volume attached once cannot attach elsewhere: 400, as
	// real Nova answers.
	attach(t, c, DefaultServerID, plain.ID)
	_, err = volumeattach.Create(ctx, c.compute, node2, volumeattach.CreateOpts{VolumeID: plain.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("attach in-use volume: %v", err)
	}
	// Attachments list and get.
	pages, err := volumeattach.List(c.compute, DefaultServerID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	atts, _ := volumeattach.ExtractVolumeAttachments(pages)
	if len(atts) != 2 || atts[0].Device != "/dev/vdb" || atts[1].Device != "/dev/vdc" {
		t.Fatalf("attachments %+v", atts)
	}
	got, err := volumeattach.Get(ctx, c.compute, DefaultServerID, plain.ID).Extract()
	if err != nil || got.VolumeID != plain.ID || got.ServerID != DefaultServerID {
		t.Fatalf("get attachment %+v %v", got, err)
	}
	// Busy server: 409 for attach and detach.
	e.SetServerTaskState(DefaultServerID, "migrating")
	if err := volumeattach.Delete(ctx, c.compute, DefaultServerID, plain.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("detach on busy server: %v", err)
	}
	e.SetServerTaskState(DefaultServerID, "")

	// Detach missing attachment is 404.
	if err := volumeattach.Delete(ctx, c.compute, node2, plain.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("detach not attached: %v", err)
	}
	detach(t, c, DefaultServerID, plain.ID)
	waitVolume(t, c.vol, plain.ID, "available")
	detach(t, c60, node2, multi.ID)
	eventually(t, "multiattach on one server", func() bool {
		v, _ := volumes.Get(ctx, c.vol, multi.ID).Extract()
		return v.Status == "in-use" && len(v.Attachments) == 1
	})

	// Metadata devices list the attached volume with its PCI address.
	md, err := e.MetadataJSON(DefaultServerID)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		UUID    string `json:"uuid"`
		AZ      string `json:"availability_zone"`
		Devices []struct {
			Bus, Serial, Address, Type string
		} `json:"devices"`
	}
	if err := json.Unmarshal(md, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.UUID != DefaultServerID || doc.AZ != "az1" || len(doc.Devices) != 1 || doc.Devices[0].Serial != multi.ID ||
		doc.Devices[0].Address != "0000:00:06.0" || doc.Devices[0].Bus != "pci" || doc.Devices[0].Type != "disk" {
		t.Fatalf("metadata %s", md)
	}
	// The HTTP metadata service and the config drive carry the same document.
	resp, err := http.Get(e.URL() + "/openstack/latest/meta_data.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metadata service: %v", err)
	}
	resp.Body.Close()
	resp, err = http.Get(e.URL() + "/servers/" + node2 + "/openstack/latest/meta_data.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metadata for node-2: %v %d", err, resp.StatusCode)
	}
	resp.Body.Close()
	dir := t.TempDir()
	if err := e.WriteConfigDrive(dir, DefaultServerID); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "openstack", "latest", "meta_data.json")); err != nil || string(b) != string(md) {
		t.Fatalf("config drive: %v", err)
	}
}

func TestDeviceLimit(t *testing.T) {
	e := startEmu(t, Options{MaxDevicesPerServer: 3})
	c := newClients(t, e)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
		attach(t, c, DefaultServerID, v.ID)
	}
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	_, err := volumeattach.Create(ctx, c.compute, DefaultServerID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("device limit: %v", err)
	}
}

func TestStuckAttachments(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		status string
	}{
		{"attaching", Faults{StuckAttaching: true}, "attaching"},
		{"reserved", Faults{StuckReserved: true}, "reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startEmu(t, Options{})
			c := newClients(t, e)
			v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
			e.SetFaults(tc.faults)
			attach(t, c, DefaultServerID, v.ID)
			waitVolume(t, c.vol, v.ID, tc.status)
			if a := e.Attachments(); len(a) != 1 || a[0].Status != tc.status {
				t.Fatalf("attachments %+v", a)
			}
			// DELETE clears an unfinished attachment.
			detach(t, c, DefaultServerID, v.ID)
			waitVolume(t, c.vol, v.ID, "available")
			if a := e.Attachments(); len(a) != 0 {
				t.Fatalf("attachments %+v", a)
			}
			// Clearing the fault lets a stuck attachment finish.
			attach(t, c, DefaultServerID, v.ID)
			waitVolume(t, c.vol, v.ID, tc.status)
			e.SetFaults(Faults{})
			waitVolume(t, c.vol, v.ID, "in-use")
		})
	}
}
