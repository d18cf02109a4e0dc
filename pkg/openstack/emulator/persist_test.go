package emulator

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e1, err := Start(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := newClients(t, e1)
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1, Name: "keep", Metadata: map[string]string{"a": "b"}})
	attach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")
	e1.AddVolumeType("gold", nil)
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := startEmu(t, Options{StateDir: dir})
	vs := e2.Volumes()
	if len(vs) != 1 || vs[0].ID != v.ID || vs[0].Status != "in-use" || vs[0].Metadata["a"] != "b" || len(vs[0].Attachments) != 1 {
		t.Fatalf("restored volumes %+v", vs)
	}
	c2 := newClients(t, e2)
	got, err := volumes.Get(context.Background(), c2.vol, v.ID).Extract()
	if err != nil || got.Name != "keep" {
		t.Fatalf("get after restart: %+v %v", got, err)
	}
	detach(t, c2, DefaultServerID, v.ID)
	waitVolume(t, c2.vol, v.ID, "available")
}
