package emulator

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

func TestVolumeLifecycleWithAttach(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()

	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, Name: "pvc-1", Metadata: map[string]string{"cinder.csi.openstack.org/cluster": "k8s"}})
	if v.Size != 1 || v.AvailabilityZone != "nova" || v.VolumeType != "__DEFAULT__" || v.Metadata["cinder.csi.openstack.org/cluster"] != "k8s" {
		t.Fatalf("unexpected volume %+v", v)
	}

	srvs, err := servers.List(c.compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := servers.ExtractServers(srvs)
	if len(all) != 1 || all[0].ID != DefaultServerID || all[0].AvailabilityZone != "nova" {
		t.Fatalf("servers: %+v", all)
	}

	att, err := volumeattach.Create(ctx, c.compute, DefaultServerID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if att.Device != "/dev/vdb" || att.VolumeID != v.ID {
		t.Fatalf("attachment %+v", att)
	}
	v = waitVolume(t, c.vol, v.ID, "in-use")
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != DefaultServerID || v.Attachments[0].Device != "/dev/vdb" {
		t.Fatalf("attachments %+v", v.Attachments)
	}
	if got := e.Attachments(); len(got) != 1 || got[0].Status != "attached" {
		t.Fatalf("Attachments() %+v", got)
	}

	// Deleting an attached volume is refused.
	err = volumes.Delete(ctx, c.vol, v.ID, nil).ExtractErr()
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("delete attached: want 400, got %v", err)
	}
	// Attaching again to the same server is refused with 400, as real
	// Nova answers.
	_, err = volumeattach.Create(ctx, c.compute, DefaultServerID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract()
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("double attach: want 400, got %v", err)
	}

	if err := volumeattach.Delete(ctx, c.compute, DefaultServerID, v.ID).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	waitVolume(t, c.vol, v.ID, "available")
	if got := e.Attachments(); len(got) != 0 {
		t.Fatalf("attachments left: %+v", got)
	}

	if err := volumes.Delete(ctx, c.vol, v.ID, nil).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitGone(t, c.vol, v.ID)
	if len(e.Volumes()) != 0 {
		t.Fatalf("volumes left: %+v", e.Volumes())
	}
	if n := e.Counters()["POST /volume/v3/{project_id}/volumes"]; n != 1 {
		t.Fatalf("create counter = %d, counters %v", n, e.Counters())
	}
	if n := e.Counters()["POST /compute/v2.1/servers/{server_id}/os-volume_attachments"]; n != 2 {
		t.Fatalf("attach counter = %d", n)
	}
}
