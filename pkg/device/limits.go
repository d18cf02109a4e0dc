package device

import (
	"os"
	"path/filepath"
	"strings"
)

// DefaultMaxDisks is how many disks a KVM guest can usually hold. Each
// virtio-blk disk takes a PCI slot; the default i440fx machine has 32,
// of which the host bridge, the ISA bridge, video, the first NIC, the memory
// balloon and the RNG take 6. That leaves 26, the same count as Nova's
// vda..vdz names. The limit counts every disk, so the node's own disks are
// subtracted (ForeignDisks).
const DefaultMaxDisks = 26

// virtualDiskPrefixes name sysfs block entries that are not hypervisor disks.
var virtualDiskPrefixes = []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd", "rbd", "fd", "drbd"}

// ForeignDisks counts the disks under <sysRoot>/block that are not Cinder
// volumes attached to us: the root disk, ephemeral and swap disks, a config
// drive attached as a disk. A disk counts as foreign when its serial does
// not look like a volume id, or when it has partitions (a boot-from-volume
// root disk carries a volume id but is not ours to count; the driver always
// uses whole disks).
func ForeignDisks(sysRoot string) int {
	entries, err := os.ReadDir(filepath.Join(sysRoot, "block"))
	if err != nil {
		return 0
	}
	foreign := 0
	for _, e := range entries {
		name := e.Name()
		if isVirtualDisk(name) {
			continue
		}
		if !LooksLikeVolumeSerial(readSerial(sysRoot, name)) || hasPartitions(sysRoot, name) {
			foreign++
		}
	}
	return foreign
}

func isVirtualDisk(name string) bool {
	for _, p := range virtualDiskPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// hasPartitions reports whether <sysRoot>/block/<name> has partition
// subdirectories (vda1, nvme0n1p1, ...), which carry a "partition" file.
func hasPartitions(sysRoot, name string) bool {
	entries, err := os.ReadDir(filepath.Join(sysRoot, "block", name))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name) {
			if _, err := os.Stat(filepath.Join(sysRoot, "block", name, e.Name(), "partition")); err == nil {
				return true
			}
		}
	}
	return false
}
