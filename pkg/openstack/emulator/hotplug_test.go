package emulator

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/backups"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

func requireLoop(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("hot-plug needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("hot-plug needs losetup")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("hot-plug needs /dev/loop-control")
	}
}

// writeAt writes through the loop device, as a filesystem on the guest would.
func writeAt(t *testing.T, dev string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func attachedLoop(t *testing.T, e *Emulator, volID string) AttachmentView {
	t.Helper()
	var a AttachmentView
	eventually(t, "hot-plugged "+volID, func() bool {
		for _, x := range e.Attachments() {
			if x.VolumeID == volID && x.Status == "attached" && x.LoopDevice != "" {
				a = x
				return true
			}
		}
		return false
	})
	return a
}

func TestHotplugDataSurvivesDetachSnapshotRestore(t *testing.T) {
	requireLoop(t)
	root := t.TempDir()
	devRoot, sysRoot := filepath.Join(root, "dev"), filepath.Join(root, "sys")
	e := startEmu(t, Options{DevRoot: devRoot, SysRoot: sysRoot})
	c := newClients(t, e)
	ctx := context.Background()
	payload := []byte("hello from a guest filesystem")

	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, DefaultServerID, v.ID)
	a := attachedLoop(t, e, v.ID)

	byID := filepath.Join(devRoot, "disk", "by-id", "virtio-"+v.ID[:20])
	dev, err := filepath.EvalSymlinks(byID)
	if err != nil || dev != a.LoopDevice {
		t.Fatalf("by-id %s -> %s (%v), loop %s", byID, dev, err, a.LoopDevice)
	}
	if p, err := filepath.EvalSymlinks(filepath.Join(devRoot, "disk", "by-path", "pci-"+a.Address)); err != nil || p != a.LoopDevice {
		t.Fatalf("by-path: %s %v", p, err)
	}
	serial, _ := os.ReadFile(filepath.Join(sysRoot, "block", "vdb", "serial"))
	size, _ := os.ReadFile(filepath.Join(sysRoot, "block", "vdb", "size"))
	if strings.TrimSpace(string(serial)) != v.ID[:20] || strings.TrimSpace(string(size)) != "2097152" {
		t.Fatalf("sysfs serial %q size %q", serial, size)
	}
	writeAt(t, byID, 4096, payload)

	// Online extend refreshes the loop device.
	if err := volumes.ExtendSize(ctx, withMV(c.vol, "3.42"), v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "loop grown", func() bool {
		out, err := exec.Command("blockdev", "--getsize64", a.LoopDevice).Output()
		return err == nil && strings.TrimSpace(string(out)) == "2147483648"
	})

	// Snapshot while attached (force), then detach: links and loop go away.
	snapID := createSnapshot(t, c, v.ID, true)
	detach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "available")
	if _, err := os.Lstat(byID); !os.IsNotExist(err) {
		t.Fatalf("by-id link left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sysRoot, "block", "vdb")); !os.IsNotExist(err) {
		t.Fatalf("sysfs left: %v", err)
	}
	if out, _ := exec.Command("losetup", "-j", e.Volumes()[0].DataFile).Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("loop device left: %s", out)
	}

	// Re-attach: data survived the detach.
	attach(t, c, DefaultServerID, v.ID)
	a = attachedLoop(t, e, v.ID)
	if got := readAt(t, a.LoopDevice, 4096, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("after re-attach: %q", got)
	}
	detach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "available")

	// Restore from the snapshot and from a backup: the bytes come along.
	fromSnap := createVolume(t, c.vol, volumes.CreateOpts{SnapshotID: snapID})
	b, err := backups.Create(ctx, c.vol, backups.CreateOpts{VolumeID: v.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "backup", func() bool {
		g, _ := backups.Get(ctx, c.vol, b.ID).Extract()
		return g != nil && g.Status == "available"
	})
	fromBackup, err := volumes.Create(ctx, withMV(c.vol, "3.47"), volumes.CreateOpts{BackupID: b.ID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c.vol, fromBackup.ID, "available")
	clone := createVolume(t, c.vol, volumes.CreateOpts{SourceVolID: v.ID})
	for _, id := range []string{fromSnap.ID, fromBackup.ID, clone.ID} {
		attach(t, c, DefaultServerID, id)
		a := attachedLoop(t, e, id)
		if got := readAt(t, a.LoopDevice, 4096, len(payload)); !bytes.Equal(got, payload) {
			t.Fatalf("volume %s lost data: %q", id, got)
		}
		detach(t, c, DefaultServerID, id)
		waitVolume(t, c.vol, id, "available")
	}
}

func TestCloseUnplugs(t *testing.T) {
	requireLoop(t)
	root := t.TempDir()
	e, err := Start(Options{DevRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	c := newClients(t, e)
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, DefaultServerID, v.ID)
	a := attachedLoop(t, e, v.ID)
	dataFile := e.Volumes()[0].DataFile
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("losetup", "-j", dataFile).Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("loop %s left after Close: %s", a.LoopDevice, out)
	}
	if _, err := os.Lstat(filepath.Join(root, "vdb")); !os.IsNotExist(err) {
		t.Fatalf("vdb link left: %v", err)
	}
	if _, err := os.Stat(dataFile); !os.IsNotExist(err) {
		t.Fatalf("temp data left: %v", err)
	}
}
