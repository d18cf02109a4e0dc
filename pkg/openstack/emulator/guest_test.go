package emulator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/qmp/qmptest"
)

const guestServerID = "2c4e6a8b-0d1f-4a3b-8c5d-7e9f1a2b3c4d"

func guestEmu(t *testing.T) (*Emulator, clients, *qmptest.Monitor) {
	t.Helper()
	m := qmptest.New(t)
	e := startEmu(t, Options{Servers: []ServerSpec{{ID: guestServerID, Name: "vm", Guest: &GuestSpec{QMPSocket: m.Socket}}}})
	return e, newClients(t, e), m
}

func executed(m *qmptest.Monitor) []string {
	var out []string
	for _, c := range m.Commands() {
		out = append(out, c.Execute)
	}
	return out
}

func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGuestAttachExtendDetach: a Nova attach plugs the volume's file with
// the volume id as serial at the slot the metadata lists; an extend
// block_resizes it; a detach waits for DEVICE_DELETED before blockdev-del.
func TestGuestAttachExtendDetach(t *testing.T) {
	e, c, m := guestEmu(t)
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, guestServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")
	cmds := m.Commands()
	if !sameList(executed(m), []string{"blockdev-add", "device_add"}) {
		t.Fatalf("attach ran %v", executed(m))
	}
	dev := cmds[1].Arguments
	if dev["serial"] != v.ID || dev["driver"] != "virtio-blk-pci" || dev["addr"] != "0x6" {
		t.Fatalf("device_add %v", dev)
	}
	if file := cmds[0].Arguments["file"].(map[string]any)["filename"]; file != e.Volumes()[0].DataFile {
		t.Fatalf("plugged %v, not the volume's file", file)
	}
	md, _ := e.MetadataJSON(guestServerID)
	if want := `"address": "0000:00:06.0"`; !strings.Contains(string(md), want) {
		t.Fatalf("metadata lacks %s: %s", want, md)
	}

	if err := volumes.ExtendSize(context.Background(), withMV(c.vol, "3.42"), v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c.vol, v.ID, "in-use")
	eventually(t, "block_resize", func() bool { return len(m.Commands()) == 3 })
	if r := m.Commands()[2]; r.Execute != "block_resize" || r.Arguments["size"] != float64(2<<30) {
		t.Fatalf("extend ran %+v", r)
	}

	detach(t, c, guestServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "available")
	if got := executed(m)[3:]; !sameList(got, []string{"device_del", "blockdev-del"}) {
		t.Fatalf("detach ran %v", got)
	}
}

// TestGuestPlugFailureRollsBack: QEMU refusing the device leaves no
// attachment and no block node (Nova rolls the attach back).
func TestGuestPlugFailureRollsBack(t *testing.T) {
	e, c, m := guestEmu(t)
	m.Fail("device_add", "PCI: slot 6 function 0 not available")
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, guestServerID, v.ID)
	eventually(t, "rollback", func() bool { return len(e.Attachments()) == 0 && len(m.Commands()) == 3 })
	waitVolume(t, c.vol, v.ID, "available")
	if !sameList(executed(m), []string{"blockdev-add", "device_add", "blockdev-del"}) {
		t.Fatalf("ran %v", executed(m))
	}
}

// TestGuestKeepsDiskDetachFails: a guest that never releases the disk
// leaves the volume attached, as Nova does after its detach timeout.
func TestGuestKeepsDiskDetachFails(t *testing.T) {
	e, c, m := guestEmu(t)
	e.guestDetachTimeout = 500 * time.Millisecond
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, guestServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")
	m.KeepDevices(true)
	detach(t, c, guestServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "detaching")
	eventually(t, "detach given up", func() bool {
		as := e.Attachments()
		return len(as) == 1 && as[0].Status == "attached"
	})
	waitVolume(t, c.vol, v.ID, "in-use")
	m.KeepDevices(false)
}
