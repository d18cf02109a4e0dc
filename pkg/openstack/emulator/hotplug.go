package emulator

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

// Hot-plug makes an attachment to a Local server look like a virtio disk on
// this host: a loop device over the volume file and the links a guest's udev
// would create. Callers hold e.mu; hotplugMu serialises losetup.

func (e *Emulator) hotplugEnabled() bool { return e.opts.DevRoot != "" }

func devName(a *attachment) string { return strings.TrimPrefix(a.Device, "/dev/") }

func pciAddress(slot int) string { return fmt.Sprintf("0000:00:%02x.0", slot) }

func serialOf(volID string) string {
	if len(volID) > 20 {
		return volID[:20]
	}
	return volID
}

// ByIDPath is where the by-id link of an attached volume appears.
func (e *Emulator) ByIDPath(volID string) string {
	return filepath.Join(e.opts.DevRoot, "disk", "by-id", "virtio-"+serialOf(volID))
}

func (e *Emulator) plug(a *attachment, v *volume) {
	if !e.hotplugEnabled() || v.DataFile == "" {
		return
	}
	e.hotplugMu.Lock()
	defer e.hotplugMu.Unlock()
	out, err := exec.Command("losetup", "--find", "--show", v.DataFile).CombinedOutput()
	if err != nil {
		klog.ErrorS(err, "emulator: hot-plug losetup failed", "volumeID", v.ID, "output", strings.TrimSpace(string(out)))
		return
	}
	loop := strings.TrimSpace(string(out))
	a.LoopDevice = loop
	name := devName(a)
	byID := e.ByIDPath(v.ID)
	byPath := filepath.Join(e.opts.DevRoot, "disk", "by-path", "pci-"+pciAddress(a.Slot))
	dev := filepath.Join(e.opts.DevRoot, name)
	for _, d := range []string{filepath.Dir(byID), filepath.Dir(byPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			klog.ErrorS(err, "emulator: hot-plug mkdir", "dir", d)
		}
	}
	replaceSymlink(loop, dev)
	replaceSymlink("../../"+name, byID)
	// udev keeps the legacy virtio-pci- name beside pci- for a virtio disk.
	replaceSymlink("../../"+name, filepath.Join(filepath.Dir(byPath), "virtio-"+filepath.Base(byPath)))
	replaceSymlink("../../"+name, byPath)
	e.writeSysfs(a, v.ID, int64(v.Size)<<30)
	klog.V(2).InfoS("emulator: hot-plugged volume", "volumeID", v.ID, "device", dev, "loop", loop)
}

func replaceSymlink(target, link string) {
	_ = os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		klog.ErrorS(err, "emulator: hot-plug symlink", "link", link)
	}
}

func (e *Emulator) writeSysfs(a *attachment, volID string, size int64) {
	if e.opts.SysRoot == "" {
		return
	}
	dir := filepath.Join(e.opts.SysRoot, "block", devName(a))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		klog.ErrorS(err, "emulator: fake sysfs", "dir", dir)
		return
	}
	devNum := ""
	var st syscall.Stat_t
	if err := syscall.Stat(a.LoopDevice, &st); err == nil {
		devNum = fmt.Sprintf("%d:%d", unixMajor(uint64(st.Rdev)), unixMinor(uint64(st.Rdev)))
	}
	_ = os.WriteFile(filepath.Join(dir, "serial"), []byte(serialOf(volID)+"\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "size"), []byte(strconv.FormatInt(size/512, 10)+"\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "dev"), []byte(devNum+"\n"), 0o644)
}

func unixMajor(dev uint64) uint32 { return uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff) }
func unixMinor(dev uint64) uint32 { return uint32(dev&0xff) | uint32((dev>>12)&^0xff) }

func (e *Emulator) unplug(a *attachment) {
	if a.LoopDevice == "" {
		return
	}
	e.hotplugMu.Lock()
	defer e.hotplugMu.Unlock()
	name := devName(a)
	_ = os.Remove(e.ByIDPath(a.VolumeID))
	_ = os.Remove(filepath.Join(e.opts.DevRoot, "disk", "by-path", "pci-"+pciAddress(a.Slot)))
	_ = os.Remove(filepath.Join(e.opts.DevRoot, "disk", "by-path", "virtio-pci-"+pciAddress(a.Slot)))
	_ = os.Remove(filepath.Join(e.opts.DevRoot, name))
	if e.opts.SysRoot != "" {
		_ = os.RemoveAll(filepath.Join(e.opts.SysRoot, "block", name))
	}
	if out, err := exec.Command("losetup", "-d", a.LoopDevice).CombinedOutput(); err != nil {
		klog.ErrorS(err, "emulator: losetup -d failed", "loop", a.LoopDevice, "output", strings.TrimSpace(string(out)))
	}
	klog.V(2).InfoS("emulator: unplugged volume", "volumeID", a.VolumeID, "loop", a.LoopDevice)
	a.LoopDevice = ""
}

// refreshLoop tells the loop driver the backing file grew, as a hypervisor
// resizes a virtio disk after an online extend.
func (e *Emulator) refreshLoop(a *attachment, size int64) {
	e.hotplugMu.Lock()
	defer e.hotplugMu.Unlock()
	if out, err := exec.Command("losetup", "-c", a.LoopDevice).CombinedOutput(); err != nil {
		klog.ErrorS(err, "emulator: losetup -c failed", "loop", a.LoopDevice, "output", strings.TrimSpace(string(out)))
	}
	e.writeSysfs(a, a.VolumeID, size)
}
