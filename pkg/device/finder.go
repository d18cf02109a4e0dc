// Package device finds the block device of a Cinder volume on this node and
// checks that it is the right one before anything writes to it.
//
// Nova's reported device path is unreliable (the guest kernel names disks in
// its own order), so the lookup goes by serial: the udev by-id links first,
// then a scan of sysfs serials in case udev made no link, then the metadata
// "devices" list, and Nova's path only as a last hint whose serial must
// match. The device and sysfs roots are configurable so tests run against
// hot-plugged loop devices and a fake sysfs tree.
package device

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/util/backoff"
)

// How a device was found, for logs.
const (
	FoundByID       = "by-id"
	FoundBySysfs    = "sysfs"
	FoundByMetadata = "metadata"
	FoundByHint     = "nova-hint"
)

// ErrNotFound means no device for the volume appeared before the context
// ended.
var ErrNotFound = errors.New("no device found for the volume")

// ErrMismatch means a device was found but is not the volume, or not all of
// it (wrong serial or too small). Writing to it could destroy other data.
var ErrMismatch = errors.New("device does not match the volume")

// MetadataLister is the part of the metadata provider the finder uses.
type MetadataLister interface {
	Devices(ctx context.Context) ([]metadata.Device, error)
}

// Options configure a Finder.
type Options struct {
	// DevRoot is the device tree root (default /dev).
	DevRoot string
	// SysRoot is the sysfs root (default /sys).
	SysRoot string
	// Metadata, when set, enables the metadata "devices" fallback.
	Metadata MetadataLister
	// Trigger asks udev to re-announce block devices between tries. By
	// default it runs udevadm, but only when DevRoot is /dev: udev never
	// manages any other tree.
	Trigger func(ctx context.Context) error
}

// Finder locates and verifies volume devices.
type Finder struct {
	devRoot  string
	sysRoot  string
	metadata MetadataLister
	trigger  func(ctx context.Context) error
}

// NewFinder returns a Finder with defaults filled in.
func NewFinder(opts Options) *Finder {
	f := &Finder{devRoot: opts.DevRoot, sysRoot: opts.SysRoot, metadata: opts.Metadata, trigger: opts.Trigger}
	if f.devRoot == "" {
		f.devRoot = "/dev"
	}
	if f.sysRoot == "" {
		f.sysRoot = "/sys"
	}
	if f.trigger == nil && filepath.Clean(f.devRoot) == "/dev" {
		f.trigger = udevTriggerBlock
	}
	return f
}

// DevRoot returns the device tree root.
func (f *Finder) DevRoot() string { return f.devRoot }

// Device is a block device found for a volume.
type Device struct {
	// Path is what to hand to mkfs and mount: the by-id link when found
	// that way (stable across renames), else the device node.
	Path string
	// Node is Path with symlinks resolved.
	Node string
	// SysName is the entry under <SysRoot>/block, "" when unknown.
	SysName string
	// Serial read from sysfs, "" when the disk exposes none.
	Serial string
	// SizeBytes is the size the kernel reports for the device now.
	SizeBytes int64
	// FoundBy says which lookup step found it.
	FoundBy string
}

// Wait timing for Find. Hot-plug plus udev usually lands within a fraction
// of a second after Nova reports the attachment, so the first retries are
// quick; the 2 s cap keeps a slow hypervisor from costing a udev trigger
// and a metadata request more than every 2 s. These are chosen, not
// measured on a production cloud; the request deadline bounds the total.
var findBackoff = backoff.Exponential{First: 50 * time.Millisecond, Max: 2 * time.Second}

// Find waits, within ctx, for the device of volumeID. hint is Nova's device
// path from the publish context ("" when absent); it is used only if its
// serial names the volume. The result is not yet verified against a size:
// call Verify before writing to it.
func (f *Finder) Find(ctx context.Context, volumeID, hint string) (*Device, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		dev, err := f.findOnce(ctx, volumeID, hint, true)
		if err == nil {
			return dev, nil
		}
		if errors.Is(err, ErrMismatch) {
			return nil, err
		}
		lastErr = err
		if f.trigger != nil {
			if err := f.trigger(ctx); err != nil {
				klog.V(4).InfoS("udev trigger failed", "volumeID", volumeID, "err", err)
			}
		}
		if err := backoff.Sleep(ctx, findBackoff.Delay(attempt)); err != nil {
			return nil, fmt.Errorf("%w: volume %s after %d tries (%v): %w", ErrNotFound, volumeID, attempt, err, lastErr)
		}
	}
}

// findOnce runs each lookup step once, then makes sure the disk found is
// the only one that can be the volume (confirm).
func (f *Finder) findOnce(ctx context.Context, volumeID, hint string, useMetadata bool) (*Device, error) {
	dev, err := f.findCandidate(ctx, volumeID, hint)
	if err != nil {
		return nil, err
	}
	if err := f.confirm(ctx, dev, volumeID, useMetadata); err != nil {
		return nil, err
	}
	return dev, nil
}

// findCandidate runs each lookup step once.
func (f *Finder) findCandidate(ctx context.Context, volumeID, hint string) (*Device, error) {
	var misses []string
	if path := f.byID(volumeID); path != "" {
		dev, err := f.describe(path, FoundByID)
		switch {
		case err != nil:
			misses = append(misses, err.Error())
		case dev.Serial != "" && !SerialMatches(dev.Serial, volumeID):
			// A stale link left by a detach that udev has not caught up
			// with: never trust it over the disk's own serial.
			misses = append(misses, fmt.Sprintf("%s points to a disk with serial %q", path, dev.Serial))
		default:
			return dev, nil
		}
	} else {
		misses = append(misses, "no by-id link")
	}
	if name := f.scanSysfs(volumeID); name != "" {
		return f.describe(f.nodeForSysName(name), FoundBySysfs)
	}
	misses = append(misses, "no sysfs serial match")
	if f.metadata != nil {
		path, err := f.byMetadata(ctx, volumeID)
		if err == nil && path != "" {
			dev, err := f.describe(path, FoundByMetadata)
			if err != nil {
				return nil, err
			}
			// The metadata tags the disk by address; if the disk also
			// exposes a serial it must agree.
			if dev.Serial != "" && !SerialMatches(dev.Serial, volumeID) {
				return nil, fmt.Errorf("%w: %s (from the metadata devices list) has serial %q, not volume %s", ErrMismatch, path, dev.Serial, volumeID)
			}
			return dev, nil
		}
		misses = append(misses, fmt.Sprintf("metadata devices: %v", orNotListed(err)))
	}
	if hint != "" {
		dev, err := f.byHint(hint, volumeID)
		if err == nil {
			return dev, nil
		}
		misses = append(misses, err.Error())
	}
	return nil, errors.New(strings.Join(misses, "; "))
}

func orNotListed(err error) any {
	if err == nil {
		return "volume not listed"
	}
	return err
}

// byIDNames are the udev by-id names a volume can have, in lookup order.
func byIDNames(volumeID string) []string {
	short := shortID(volumeID)
	names := []string{
		"virtio-" + short, // virtio-blk: serial cut to 20 characters
		"virtio-" + volumeID,
		"scsi-0QEMU_QEMU_HARDDISK_" + short, // virtio-scsi
		"scsi-0QEMU_QEMU_HARDDISK_" + volumeID,
		"wwn-0x" + strings.ReplaceAll(volumeID, "-", ""), // VMware
	}
	return dedupe(names)
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// byID returns the by-id link of the volume, or "".
func (f *Finder) byID(volumeID string) string {
	dir := filepath.Join(f.devRoot, "disk", "by-id")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name()] = true
	}
	for _, name := range byIDNames(volumeID) {
		if present[name] {
			return filepath.Join(dir, name)
		}
	}
	// NVMe links are nvme-<model>_<serial>, and the model varies by
	// hypervisor ("QEMU_NVMe_Ctrl", ...), so match on the serial suffix.
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "nvme-") || strings.Contains(name, "-part") {
			continue
		}
		if strings.HasSuffix(name, "_"+volumeID) || strings.HasSuffix(name, "_"+shortID(volumeID)) {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// scanSysfs returns the <SysRoot>/block entry whose serial names the volume.
func (f *Finder) scanSysfs(volumeID string) string {
	if names := f.disksFor(volumeID); len(names) > 0 {
		return names[0]
	}
	return ""
}

// disksFor returns every <SysRoot>/block entry whose serial names the
// volume.
func (f *Finder) disksFor(volumeID string) []string {
	entries, err := os.ReadDir(filepath.Join(f.sysRoot, "block"))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if SerialMatches(readSerial(f.sysRoot, e.Name()), volumeID) {
			names = append(names, e.Name())
		}
	}
	return names
}

// nodeForSysName is the device node of a sysfs block entry.
func (f *Finder) nodeForSysName(name string) string {
	return filepath.Join(f.devRoot, name)
}

// byMetadata maps the metadata "devices" entry of the volume to its
// /dev/disk/by-path link. Exactly one link must match.
func (f *Finder) byMetadata(ctx context.Context, volumeID string) (string, error) {
	devices, err := f.metadata.Devices(ctx)
	if err != nil {
		return "", err
	}
	md := metadata.Metadata{UUID: "-", Devices: devices}
	d := md.DiskBySerial(volumeID)
	if d == nil {
		return "", nil
	}
	return f.byPathLink(d)
}

// byPathLink returns the /dev/disk/by-path link of the disk at a metadata
// device's bus address. Exactly one disk must match.
func (f *Finder) byPathLink(d *metadata.Device) (string, error) {
	if !safeComponent(d.Bus) || !safeComponent(d.Address) {
		return "", fmt.Errorf("metadata device bus %q address %q is not a plain name", d.Bus, d.Address)
	}
	dir := filepath.Join(f.devRoot, "disk", "by-path")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("metadata lists %s-%s but %s is unreadable: %w", d.Bus, d.Address, dir, err)
	}
	// udev names a PCI disk "pci-<address>" and a SCSI disk
	// "pci-<controller>-scsi-<address>": match the whole name or a suffix.
	// udev also keeps the legacy "virtio-pci-<address>" beside
	// "pci-<address>" for one disk, so links are counted by their target.
	want := d.Bus + "-" + d.Address
	var matches []string
	targets := map[string]bool{}
	for _, e := range entries {
		if name := e.Name(); name == want || strings.HasSuffix(name, "-"+want) {
			link := filepath.Join(dir, name)
			target, err := filepath.EvalSymlinks(link)
			if err != nil {
				continue // a dangling link names no disk
			}
			if !targets[target] {
				targets[target] = true
				matches = append(matches, link)
			}
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("metadata lists %s but %s has no such link", want, dir)
	case 1:
		return matches[0], nil
	default:
		return "", fmt.Errorf("metadata address %s matches %d links: %s", want, len(matches), strings.Join(matches, ", "))
	}
}

func safeComponent(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// byHint accepts Nova's reported path only when its serial names the volume.
func (f *Finder) byHint(hint, volumeID string) (*Device, error) {
	// Nova reports /dev/vdX; look it up under our device root.
	path := filepath.Join(f.devRoot, strings.TrimPrefix(filepath.Clean(hint), "/dev/"))
	dev, err := f.describe(path, FoundByHint)
	if err != nil {
		return nil, fmt.Errorf("nova hint %s: %w", hint, err)
	}
	if !SerialMatches(dev.Serial, volumeID) {
		return nil, fmt.Errorf("nova hint %s has serial %q, not volume %s", hint, dev.Serial, volumeID)
	}
	return dev, nil
}

// describe fills a Device for path.
func (f *Finder) describe(path, foundBy string) (*Device, error) {
	node, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s is not a block device", node)
	}
	size, err := SizeOf(node)
	if err != nil {
		return nil, err
	}
	dev := &Device{Path: path, Node: node, SizeBytes: size, FoundBy: foundBy}
	dev.SysName = f.SysNameFor(st.Rdev)
	if dev.SysName != "" {
		dev.Serial = readSerial(f.sysRoot, dev.SysName)
	}
	return dev, nil
}

// SysNameFor returns the <SysRoot>/block entry whose dev file holds the
// given device number, or "". Matching by number rather than by name works
// both on a real host and on a fake tree whose names differ from the
// nodes they describe.
func (f *Finder) SysNameFor(rdev uint64) string {
	want := fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	entries, err := os.ReadDir(filepath.Join(f.sysRoot, "block"))
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if readTrimmed(filepath.Join(f.sysRoot, "block", e.Name(), "dev")) == want {
			return e.Name()
		}
	}
	return ""
}

// SerialOf returns the serial of a sysfs block entry ("" when none).
func (f *Finder) SerialOf(sysName string) string { return readSerial(f.sysRoot, sysName) }

// Verify refuses a device that is not entirely the volume: its serial, when
// the disk exposes one, must name the volume, and it must hold at least
// minSize bytes (0 skips the size check). It runs before any mkfs.
func Verify(dev *Device, volumeID string, minSize int64) error {
	if dev.Serial != "" && !SerialMatches(dev.Serial, volumeID) {
		return fmt.Errorf("%w: %s has serial %q, not volume %s", ErrMismatch, dev.Path, dev.Serial, volumeID)
	}
	if dev.Serial == "" && dev.FoundBy == FoundByHint {
		return fmt.Errorf("%w: %s exposes no serial to check against volume %s", ErrMismatch, dev.Path, volumeID)
	}
	if dev.SizeBytes <= 0 {
		return fmt.Errorf("%w: %s has no media (size 0)", ErrMismatch, dev.Path)
	}
	if minSize > 0 && dev.SizeBytes < minSize {
		return fmt.Errorf("%w: %s holds %d bytes but volume %s is %d bytes", ErrMismatch, dev.Path, dev.SizeBytes, volumeID, minSize)
	}
	return nil
}

// SizeOf returns the size of a block device as the kernel sees it now.
func SizeOf(path string) (int64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	size, err := unix.Seek(fd, 0, 2)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return size, nil
}

// Rescan asks the kernel to re-read the device's capacity, then returns the
// size it reports. virtio-blk has no rescan attribute (the hypervisor's
// config-change interrupt updates it), so a missing file is not an error.
func (f *Finder) Rescan(dev *Device) (int64, error) {
	if dev.SysName != "" {
		rescan := filepath.Join(f.sysRoot, "block", dev.SysName, "device", "rescan")
		if err := os.WriteFile(rescan, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("rescanning %s: %w", dev.Path, err)
		}
	}
	size, err := SizeOf(dev.Node)
	if err != nil {
		return 0, err
	}
	dev.SizeBytes = size
	return size, nil
}

// udevTriggerBlock re-announces block devices only: a global trigger
// replays every device on the host (network, input, ...) for nothing.
func udevTriggerBlock(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "udevadm", "trigger", "--action=add", "--subsystem-match=block").CombinedOutput()
	if err != nil {
		return fmt.Errorf("udevadm trigger: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
