package device

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"
)

// confirm refuses a disk whose serial does not single out the volume.
//
// virtio-blk keeps only the first 20 characters of the volume id, so two
// volumes whose ids share them look alike: when another disk on the node
// has a serial naming the volume too, neither can be told from the other
// and both are named in the error. And a volume that is not attached at
// all matches a disk of another volume sharing its first 20 characters;
// where the metadata "devices" list (metadata service or config drive)
// gives each attached volume's full id and bus address, a disk found by a
// cut serial must sit at the volume's address and not at another
// volume's. A metadata service that cannot answer confirms nothing and
// refuses nothing: it is optional.
func (f *Finder) confirm(ctx context.Context, dev *Device, volumeID string, useMetadata bool) error {
	if dev.Serial == "" {
		return nil
	}
	if other := f.otherDiskFor(volumeID, dev.SysName); other != "" {
		return fmt.Errorf("%w: disks %s (%s, serial %q) and %s (%s, serial %q) both have a serial naming volume %s; a cut serial cannot tell them apart, so neither is used",
			ErrMismatch, dev.SysName, dev.Node, dev.Serial, other, f.nodeForSysName(other), readSerial(f.sysRoot, other), volumeID)
	}
	if !useMetadata || f.metadata == nil || !cutSerial(dev.Serial, volumeID) {
		return nil
	}
	devices, err := f.metadata.Devices(ctx)
	if err != nil {
		klog.V(4).InfoS("Metadata devices unavailable; the cut serial is not cross-checked", "volumeID", volumeID, "device", dev.Path, "err", err)
		return nil
	}
	for i := range devices {
		d := &devices[i]
		if d.Type != "disk" || d.Serial == "" {
			continue
		}
		link, err := f.byPathLink(d)
		if err != nil {
			continue
		}
		node, err := filepath.EvalSymlinks(link)
		if err != nil {
			continue
		}
		switch {
		case d.Serial == volumeID && node != dev.Node:
			return fmt.Errorf("%w: the metadata devices list puts volume %s at %s-%s (%s), but the serial %q matched %s",
				ErrMismatch, volumeID, d.Bus, d.Address, node, dev.Serial, dev.Node)
		case d.Serial != volumeID && node == dev.Node:
			return fmt.Errorf("%w: %s (serial %q) is volume %s at %s-%s according to the metadata devices list, not volume %s",
				ErrMismatch, dev.Node, dev.Serial, d.Serial, d.Bus, d.Address, volumeID)
		}
	}
	return nil
}

// cutSerial reports whether serial names the volume only by a prefix of
// its id, as virtio-blk's 20 characters do.
func cutSerial(serial, volumeID string) bool {
	serial = strings.TrimSpace(serial)
	return serial != volumeID && serial != strings.ReplaceAll(volumeID, "-", "")
}

// otherDiskFor returns a <SysRoot>/block entry other than sysName whose
// serial names the volume, or "".
func (f *Finder) otherDiskFor(volumeID, sysName string) string {
	for _, name := range f.disksFor(volumeID) {
		if name != sysName {
			return name
		}
	}
	return ""
}
