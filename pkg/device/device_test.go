package device

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/device/devicetest"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

const (
	volA = "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f0001"
	volB = "c0ffee00-1111-4d8e-9c59-5e6f3a6f0002"
	gib  = int64(1) << 30
)

func TestSerialMatches(t *testing.T) {
	cases := []struct {
		serial string
		want   bool
	}{
		{volA, true},
		{volA[:20], true},
		{volA[:20] + "\n", true},
		{strings.ReplaceAll(volA, "-", ""), true},
		{volA[:19], false}, // too short to be unambiguous
		{volB[:20], false},
		{"", false},
	}
	for _, c := range cases {
		if got := SerialMatches(c.serial, volA); got != c.want {
			t.Errorf("SerialMatches(%q, volA) = %t, want %t", c.serial, got, c.want)
		}
	}
}

func TestParseVPD80(t *testing.T) {
	page := append([]byte{0x00, 0x80, 0x00, byte(len(volA))}, volA...)
	if got := parseVPD80(page); got != volA {
		t.Fatalf("parseVPD80 = %q", got)
	}
	if got := parseVPD80(append([]byte{0x00, 0x83, 0x00, 0x04}, "abcd"...)); got != "" {
		t.Fatalf("parseVPD80(page 0x83) = %q, want empty", got)
	}
	if got := parseVPD80([]byte{0x00}); got != "" {
		t.Fatalf("parseVPD80(short) = %q", got)
	}
}

func TestLooksLikeVolumeSerial(t *testing.T) {
	for serial, want := range map[string]bool{
		volA:                              true,
		volA[:20]:                         true,
		strings.ReplaceAll(volA, "-", ""): true,
		"QM00001":                         false,
		"":                                false,
		"drive-virtio-disk0xxxxxxx":       false,
	} {
		if got := LooksLikeVolumeSerial(serial); got != want {
			t.Errorf("LooksLikeVolumeSerial(%q) = %t, want %t", serial, got, want)
		}
	}
}

func TestByIDNamesCoverEveryHypervisorForm(t *testing.T) {
	got := strings.Join(byIDNames(volA), " ")
	for _, want := range []string{
		"virtio-" + volA[:20], "virtio-" + volA,
		"scsi-0QEMU_QEMU_HARDDISK_" + volA[:20], "scsi-0QEMU_QEMU_HARDDISK_" + volA,
		"wwn-0x" + strings.ReplaceAll(volA, "-", ""),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("byIDNames lacks %s", want)
		}
	}
	if names := byIDNames("short"); len(names) != 3 {
		t.Errorf("byIDNames(short id) = %v, want duplicates removed and no panic", names)
	}
}

func TestByIDFindsEachForm(t *testing.T) {
	forms := []string{
		"virtio-" + volA[:20],
		"virtio-" + volA,
		"scsi-0QEMU_QEMU_HARDDISK_" + volA[:20],
		"scsi-0QEMU_QEMU_HARDDISK_" + volA,
		"wwn-0x" + strings.ReplaceAll(volA, "-", ""),
		"nvme-QEMU_NVMe_Ctrl_" + volA[:20],
		"nvme-Amazing_Cloud_Disk_" + volA,
	}
	for _, form := range forms {
		t.Run(form, func(t *testing.T) {
			f := NewFinder(Options{DevRoot: t.TempDir(), SysRoot: t.TempDir()})
			dir := filepath.Join(f.devRoot, "disk", "by-id")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, other := range []string{"virtio-" + volB[:20], "nvme-QEMU_NVMe_Ctrl_" + volA[:20] + "-part1"} {
				if other != form {
					_ = os.Symlink("../../vdz", filepath.Join(dir, other))
				}
			}
			if err := os.Symlink("../../vdb", filepath.Join(dir, form)); err != nil {
				t.Fatal(err)
			}
			if got := f.byID(volA); got != filepath.Join(dir, form) {
				t.Fatalf("byID = %q, want %s", got, form)
			}
		})
	}
}

func TestScanSysfsReadsEachSerialSource(t *testing.T) {
	sys := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(sys, "block", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("vda/serial", "")
	put("sdb/device/vpd_pg80", string(append([]byte{0, 0x80, 0, byte(len(volB))}, volB...)))
	put("nvme0n1/device/serial", volA[:20]+"      \n")
	f := NewFinder(Options{DevRoot: t.TempDir(), SysRoot: sys})
	if got := f.scanSysfs(volA); got != "nvme0n1" {
		t.Errorf("scanSysfs(volA) = %q, want nvme0n1 (NVMe controller serial)", got)
	}
	if got := f.scanSysfs(volB); got != "sdb" {
		t.Errorf("scanSysfs(volB) = %q, want sdb (SCSI VPD page 0x80)", got)
	}
	if got := f.scanSysfs("a0000000-0000-0000-0000-000000000000"); got != "" {
		t.Errorf("scanSysfs(unknown) = %q", got)
	}
}

type fakeLister struct {
	devices []metadata.Device
	err     error
}

func (f fakeLister) Devices(context.Context) ([]metadata.Device, error) { return f.devices, f.err }

func TestByMetadataMapsBusAndAddressToByPath(t *testing.T) {
	dev := t.TempDir()
	byPath := filepath.Join(dev, "disk", "by-path")
	if err := os.MkdirAll(byPath, 0o755); err != nil {
		t.Fatal(err)
	}
	// Each link names its own disk, except the legacy virtio-pci- name,
	// which udev keeps beside pci- for the same disk.
	links := map[string]string{
		"pci-0000:00:07.0": "vdb", "virtio-pci-0000:00:07.0": "vdb",
		"pci-0000:00:04.0-scsi-0:0:0:1": "sda", "pci-0000:00:08.0": "vdc", "pci-0000:00:08.0-part1": "vdc1",
	}
	for name, disk := range links {
		if err := os.WriteFile(filepath.Join(dev, disk), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../"+disk, filepath.Join(byPath, name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		device  metadata.Device
		want    string
		wantErr string
	}{
		{"pci", metadata.Device{Type: "disk", Bus: "pci", Serial: volA, Address: "0000:00:07.0"}, "pci-0000:00:07.0", ""},
		{"scsi", metadata.Device{Type: "disk", Bus: "scsi", Serial: volA, Address: "0:0:0:1"}, "pci-0000:00:04.0-scsi-0:0:0:1", ""},
		{"no link", metadata.Device{Type: "disk", Bus: "pci", Serial: volA, Address: "0000:00:09.0"}, "", "no such link"},
		{"path traversal", metadata.Device{Type: "disk", Bus: "pci", Serial: volA, Address: "../../x"}, "", "not a plain name"},
		{"not listed", metadata.Device{Type: "disk", Bus: "pci", Serial: volB, Address: "0000:00:07.0"}, "", ""},
		{"a nic", metadata.Device{Type: "nic", Bus: "pci", Serial: volA, Address: "0000:00:07.0"}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := NewFinder(Options{DevRoot: dev, SysRoot: t.TempDir(), Metadata: fakeLister{devices: []metadata.Device{c.device}}})
			got, err := f.byMetadata(context.Background(), volA)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("byMetadata error = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := ""; c.want != "" {
				want = filepath.Join(byPath, c.want)
				if got != want {
					t.Fatalf("byMetadata = %q, want %q", got, want)
				}
			} else if got != "" {
				t.Fatalf("byMetadata = %q, want none", got)
			}
		})
	}
}

func TestForeignDisksCountsTheNodesOwnDisks(t *testing.T) {
	sys := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(sys, "block", rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("vda/serial", "")                 // root disk, no serial
	put("vda/vda1/partition", "1")        // with a partition
	put("vdb/serial", volA[:20])          // a Cinder volume: ours
	put("vdc/serial", volB[:20])          // boot-from-volume root: has partitions
	put("vdc/vdc1/partition", "1")        //
	put("sr0/device/vpd_pg80", "")        // cdrom config drive: not a disk slot
	put("loop0/dev", "7:0")               // loop devices are not disks
	put("nvme0n1/device/serial", "QM001") // an NVMe ephemeral disk
	if got := ForeignDisks(sys); got != 3 {
		t.Fatalf("ForeignDisks = %d, want 3 (vda, vdc, nvme0n1)", got)
	}
	if got := ForeignDisks(filepath.Join(sys, "missing")); got != 0 {
		t.Fatalf("ForeignDisks(missing tree) = %d", got)
	}
}

// The tests below use real loop devices laid out like hot-plugged disks.

func TestFindByIDAndVerify(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	d := h.Plug(t, volA, 64<<20, devicetest.PlugOptions{})
	h.Plug(t, volB, 64<<20, devicetest.PlugOptions{})
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Path != d.ByIDPath() || dev.Node != d.Loop || dev.SysName != d.Name || dev.FoundBy != FoundByID || dev.SizeBytes != 64<<20 {
		t.Fatalf("Find = %+v, want the by-id link of %s", dev, d.Name)
	}
	if err := Verify(dev, volA, 64<<20); err != nil {
		t.Fatalf("Verify(right size) = %v", err)
	}
	if err := Verify(dev, volA, gib); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(device smaller than the volume) = %v, want ErrMismatch", err)
	}
	if err := Verify(dev, volB, 0); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(other volume) = %v, want ErrMismatch", err)
	}
}

func TestFindThroughSysfsWhenUdevMadeNoLink(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	d := h.Plug(t, volA, 64<<20, devicetest.PlugOptions{NoByID: true})
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev.FoundBy != FoundBySysfs || dev.Path != d.NodePath() || dev.Node != d.Loop {
		t.Fatalf("Find = %+v, want %s through sysfs", dev, d.NodePath())
	}
}

func TestFindThroughMetadataDevices(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	d := h.Plug(t, volA, 64<<20, devicetest.PlugOptions{NoByID: true, NoSerial: true})
	lister := fakeLister{devices: []metadata.Device{{Type: "disk", Bus: "pci", Serial: volA, Address: d.PCIAddress()}}}
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot, Metadata: lister})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev.FoundBy != FoundByMetadata || dev.Path != d.ByPathPath() || dev.Node != d.Loop {
		t.Fatalf("Find = %+v, want %s through the metadata devices", dev, d.ByPathPath())
	}
}

func TestFindRefusesMetadataAddressOfAnotherDisk(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	other := h.Plug(t, volB, 64<<20, devicetest.PlugOptions{})
	lister := fakeLister{devices: []metadata.Device{{Type: "disk", Bus: "pci", Serial: volA, Address: other.PCIAddress()}}}
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot, Metadata: lister})
	if _, err := f.Find(context.Background(), volA, ""); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Find = %v, want ErrMismatch: the disk at that address has volB's serial", err)
	}
}

func TestFindNeverTrustsANovaHintWithAnotherSerial(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	other := h.Plug(t, volB, 64<<20, devicetest.PlugOptions{NoByID: true})
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot, Trigger: func(context.Context) error { return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.Find(ctx, volA, "/dev/"+other.Name)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nova hint /dev/"+other.Name+" has serial") {
		t.Fatalf("Find with a hint at volB's disk = %v, want ErrNotFound explaining the serial", err)
	}
}

func TestFindSkipsAStaleByIDLink(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	right := h.Plug(t, volA, 64<<20, devicetest.PlugOptions{NoByID: true})
	wrong := h.Plug(t, volB, 64<<20, devicetest.PlugOptions{})
	// udev has not caught up: volA's link still points at volB's disk.
	if err := os.Symlink("../../"+wrong.Name, right.ByIDPath()); err != nil {
		t.Fatal(err)
	}
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Node != right.Loop || dev.FoundBy != FoundBySysfs {
		t.Fatalf("Find = %+v, want %s found by sysfs", dev, right.Loop)
	}
}

func TestFindWaitsForTheDeviceAndTriggersUdevBetweenTries(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	var triggers atomic.Int32
	var plugged *devicetest.Disk
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot, Trigger: func(context.Context) error {
		// The disk "appears" after the second trigger.
		if triggers.Add(1) == 2 {
			plugged = h.Plug(t, volA, 64<<20, devicetest.PlugOptions{})
		}
		return nil
	}})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Node != plugged.Loop || triggers.Load() != 2 {
		t.Fatalf("Find = %+v after %d triggers, want the disk plugged after 2", dev, triggers.Load())
	}
}

func TestFindGivesUpAtTheDeadline(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot, Trigger: func(context.Context) error { return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.Find(ctx, volA, "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no by-id link") {
		t.Fatalf("Find = %v, want ErrNotFound naming what was tried", err)
	}
}

func TestRescanReadsTheNewSize(t *testing.T) {
	devicetest.RequireRoot(t)
	h := devicetest.NewHost(t)
	d := h.Plug(t, volA, 64<<20, devicetest.PlugOptions{})
	f := NewFinder(Options{DevRoot: h.DevRoot, SysRoot: h.SysRoot})
	dev, err := f.Find(context.Background(), volA, "")
	if err != nil {
		t.Fatal(err)
	}
	// A SCSI disk has device/rescan; the fake one records the write.
	rescan := filepath.Join(d.SysDir(), "device", "rescan")
	if err := os.MkdirAll(filepath.Dir(rescan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rescan, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Grow(t, 128<<20)
	size, err := f.Rescan(dev)
	if err != nil || size != 128<<20 || dev.SizeBytes != 128<<20 {
		t.Fatalf("Rescan = %d, %v; want 128 MiB", size, err)
	}
	if got, _ := os.ReadFile(rescan); string(got) != "1" {
		t.Fatalf("rescan file holds %q, want 1", got)
	}
}
