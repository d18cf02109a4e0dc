// Package devicetest builds a fake node for tests: loop devices that look
// like hot-plugged virtio disks under a private device root, with a fake
// sysfs tree beside them, laid out as the OpenStack emulator lays them out.
// It is a test-only package.
package devicetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root with the given tools.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	for _, tool := range append([]string{"losetup", "mount", "umount"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// Host is a fake node: DevRoot and SysRoot trees plus a directory for mount
// points. Its cleanup unmounts everything under its directories and
// detaches its loop devices.
type Host struct {
	DevRoot string
	SysRoot string
	// MountDir is where tests put staging and target paths.
	MountDir string

	mu    sync.Mutex
	disks []*Disk
	next  byte
}

// NewHost builds an empty fake node.
func NewHost(t testing.TB) *Host {
	t.Helper()
	h := &Host{DevRoot: t.TempDir(), SysRoot: t.TempDir(), MountDir: t.TempDir(), next: 'b'}
	for _, d := range []string{"disk/by-id", "disk/by-path"} {
		mkdir(t, filepath.Join(h.DevRoot, d))
	}
	mkdir(t, filepath.Join(h.SysRoot, "block"))
	// Registered after the TempDirs, so it runs before they are removed.
	t.Cleanup(func() { h.cleanup(t) })
	return h
}

// Disk is one plugged loop device.
type Disk struct {
	Name     string // vdX, the entry under DevRoot and SysRoot/block
	Loop     string // /dev/loopN
	Backing  string // backing file
	VolumeID string
	Slot     int
	host     *Host
}

// PlugOptions shape a plugged disk.
type PlugOptions struct {
	// NoByID leaves out the by-id link, as when udev missed the event.
	NoByID bool
	// NoSerial leaves out the sysfs serial.
	NoSerial bool
	// Serial overrides the sysfs serial (default: the id cut to 20).
	Serial string
}

// Plug creates a sparse file of size bytes, attaches it to a loop device
// and adds the links and sysfs entries a guest would show for a virtio
// disk: DevRoot/vdX -> /dev/loopN, DevRoot/disk/by-id/virtio-<id[:20]>,
// DevRoot/disk/by-path/pci-0000:00:<slot>.0, SysRoot/block/vdX/{serial,size,dev}.
func (h *Host) Plug(t testing.TB, volumeID string, size int64, opts PlugOptions) *Disk {
	t.Helper()
	h.mu.Lock()
	name := "vd" + string(h.next)
	slot := int(h.next-'b') + 7
	h.next++
	h.mu.Unlock()

	backing := filepath.Join(t.TempDir(), volumeID+".img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	loop := attachLoop(t, backing)
	d := &Disk{Name: name, Loop: loop, Backing: backing, VolumeID: volumeID, Slot: slot, host: h}
	h.mu.Lock()
	h.disks = append(h.disks, d)
	h.mu.Unlock()

	symlink(t, loop, filepath.Join(h.DevRoot, name))
	if !opts.NoByID {
		symlink(t, "../../"+name, d.ByIDPath())
	}
	symlink(t, "../../"+name, d.ByPathPath())
	dir := filepath.Join(h.SysRoot, "block", name)
	mkdir(t, dir)
	var st unix.Stat_t
	if err := unix.Stat(loop, &st); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "dev"), fmt.Sprintf("%d:%d\n", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	write(t, filepath.Join(dir, "size"), strconv.FormatInt(size/512, 10)+"\n")
	if !opts.NoSerial {
		serial := opts.Serial
		if serial == "" {
			serial = ShortID(volumeID)
		}
		write(t, filepath.Join(dir, "serial"), serial+"\n")
	}
	return d
}

// attachLoop attaches backing to a free loop device. Another process
// (a parallel test package, the emulator) can take the device losetup
// found free before losetup configures it, which losetup reports as busy:
// that is retried a few times.
func attachLoop(t testing.TB, backing string) string {
	t.Helper()
	var out []byte
	var err error
	for range 5 {
		out, err = exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
		if err == nil {
			return strings.TrimSpace(string(out))
		}
		if !strings.Contains(string(out), "busy") {
			break
		}
	}
	t.Fatalf("losetup --find --show %s: %v: %s", backing, err, out)
	return ""
}

// ShortID is the id as a virtio-blk serial shows it.
func ShortID(id string) string {
	if len(id) > 20 {
		return id[:20]
	}
	return id
}

// ByIDPath is the disk's virtio by-id link.
func (d *Disk) ByIDPath() string {
	return filepath.Join(d.host.DevRoot, "disk", "by-id", "virtio-"+ShortID(d.VolumeID))
}

// PCIAddress is the address the metadata "devices" list gives the disk.
func (d *Disk) PCIAddress() string { return fmt.Sprintf("0000:00:%02x.0", d.Slot) }

// ByPathPath is the disk's by-path link.
func (d *Disk) ByPathPath() string {
	return filepath.Join(d.host.DevRoot, "disk", "by-path", "pci-"+d.PCIAddress())
}

// NodePath is DevRoot/vdX.
func (d *Disk) NodePath() string { return filepath.Join(d.host.DevRoot, d.Name) }

// SysDir is SysRoot/block/vdX.
func (d *Disk) SysDir() string { return filepath.Join(d.host.SysRoot, "block", d.Name) }

// Grow enlarges the backing file and tells the loop driver, as a hypervisor
// resizes a disk after an extend.
func (d *Disk) Grow(t testing.TB, size int64) {
	t.Helper()
	if err := os.Truncate(d.Backing, size); err != nil {
		t.Fatal(err)
	}
	Run(t, "losetup", "-c", d.Loop)
	write(t, filepath.Join(d.SysDir(), "size"), strconv.FormatInt(size/512, 10)+"\n")
}

// Unplug removes the links and sysfs entry, leaving the loop device (the
// host cleanup detaches it), as a surprise removal looks to the node.
func (d *Disk) Unplug(t testing.TB) {
	t.Helper()
	for _, p := range []string{d.ByIDPath(), d.ByPathPath(), d.NodePath()} {
		_ = os.Remove(p)
	}
	if err := os.RemoveAll(d.SysDir()); err != nil {
		t.Fatal(err)
	}
}

// Run runs a command and fails the test on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (h *Host) cleanup(t testing.TB) {
	roots := []string{h.DevRoot, h.SysRoot, h.MountDir}
	h.mu.Lock()
	for _, d := range h.disks {
		roots = append(roots, filepath.Dir(d.Backing))
	}
	h.mu.Unlock()
	for _, mp := range MountsUnder(roots...) {
		if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
			t.Errorf("cleanup: umount %s: %v: %s", mp, err, out)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.disks {
		if out, err := exec.Command("losetup", "-d", d.Loop).CombinedOutput(); err != nil {
			t.Errorf("cleanup: losetup -d %s: %v: %s", d.Loop, err, out)
		}
	}
}

// MountsUnder lists mount points below any of roots, deepest and newest
// first, so unmounting them in order works.
func MountsUnder(roots ...string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		for _, r := range roots {
			if r != "" && (mp == r || strings.HasPrefix(mp, r+"/")) {
				out = append(out, mp)
				break
			}
		}
	}
	// Later lines are newer mounts; reverse, then stable-sort deepest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
