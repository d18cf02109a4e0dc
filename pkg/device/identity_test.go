package device

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// identityTree is a fake node without root: sysfs serials and by-path
// links to plain files standing in for device nodes (confirm only
// compares resolved paths).
func identityTree(t *testing.T, disks map[string]string) (*Finder, string) {
	t.Helper()
	dev, sys := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dev, "disk", "by-path"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, serial := range disks {
		if err := os.MkdirAll(filepath.Join(sys, "block", name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, "block", name, "serial"), []byte(serial+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dev, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return NewFinder(Options{DevRoot: dev, SysRoot: sys, Trigger: func(context.Context) error { return nil }}), dev
}

func link(t *testing.T, dev, name, address string) {
	t.Helper()
	if err := os.Symlink("../../"+name, filepath.Join(dev, "disk", "by-path", "pci-"+address)); err != nil {
		t.Fatal(err)
	}
}

func TestConfirmRefusesASerialTwoDisksShare(t *testing.T) {
	const a, b = "7c0d7c8e-5a2b-4c3d-8e9f-0000000000e1", "7c0d7c8e-5a2b-4c3d-8e9f-0000000000e2"
	f, dev := identityTree(t, map[string]string{"vdb": a[:20], "vdc": b[:20], "vdd": "something-else-entirely"})
	err := f.confirm(context.Background(), &Device{SysName: "vdb", Serial: a[:20], Node: filepath.Join(dev, "vdb")}, a, false)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "vdb") || !strings.Contains(err.Error(), "vdc") {
		t.Fatalf("confirm = %v, want ErrMismatch naming vdb and vdc", err)
	}
	// A serial no other disk shares is accepted.
	if err := f.confirm(context.Background(), &Device{SysName: "vdd", Serial: "something-else-entirely"}, "something-else-entirely", false); err != nil {
		t.Fatalf("a unique serial: %v", err)
	}
}

func TestConfirmCrossChecksACutSerialWithTheMetadataDevices(t *testing.T) {
	const d = "7c0d7c8e-4a2b-4c3d-8e9f-00000000000d"
	impostor := d[:24] + "ffffffffffff"
	f, dev := identityTree(t, map[string]string{"vdb": d[:20], "vdc": "7c0d7c8e-9999-4c3d-8"})
	link(t, dev, "vdb", "0000:00:07.0")
	link(t, dev, "vdc", "0000:00:08.0")
	vdb := &Device{SysName: "vdb", Serial: d[:20], Node: filepath.Join(dev, "vdb")}
	cases := []struct {
		name    string
		volume  string
		devices []metadata.Device
		err     error
		mention string
	}{
		{"the volume is listed at this disk", d, []metadata.Device{{Type: "disk", Bus: "pci", Address: "0000:00:07.0", Serial: d}}, nil, ""},
		{"this disk is listed as another volume", impostor, []metadata.Device{{Type: "disk", Bus: "pci", Address: "0000:00:07.0", Serial: d}}, ErrMismatch, "is volume " + d},
		{"the volume is listed at another disk", d, []metadata.Device{{Type: "disk", Bus: "pci", Address: "0000:00:08.0", Serial: d}}, ErrMismatch, "0000:00:08.0"},
		{"nothing listed", impostor, nil, nil, ""},
		{"metadata unavailable", impostor, nil, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lister := fakeLister{devices: c.devices}
			if c.name == "metadata unavailable" {
				lister.err = errors.New("connection refused")
			}
			f.metadata = lister
			err := f.confirm(context.Background(), vdb, c.volume, true)
			if c.err == nil && err != nil || c.err != nil && (!errors.Is(err, c.err) || !strings.Contains(err.Error(), c.mention)) {
				t.Fatalf("confirm = %v, want %v mentioning %q", err, c.err, c.mention)
			}
		})
	}
}
