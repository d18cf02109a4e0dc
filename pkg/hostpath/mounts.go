package hostpath

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"
)

// DefaultMountInfo is the mount table of the plugin's mount namespace.
const DefaultMountInfo = "/proc/self/mountinfo"

// Table is a snapshot of a mountinfo file. Deciding from it, rather than
// from a stat of the path, sees bind mounts of the same filesystem and
// never blocks on a hung mount.
type Table []mount.MountInfo

// ReadTable parses a mountinfo file ("" is DefaultMountInfo).
func ReadTable(path string) (Table, error) {
	if path == "" {
		path = DefaultMountInfo
	}
	infos, err := mount.ParseMountInfo(path)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table %s: %w", path, err)
	}
	return infos, nil
}

// At returns the mounts stacked at path, bottom first. path is compared as
// given (cleaned): pass a path from Root.Resolve, which has no symlinks.
func (t Table) At(path string) []mount.MountInfo {
	path = filepath.Clean(path)
	var out []mount.MountInfo
	for _, m := range t {
		if m.MountPoint == path {
			out = append(out, m)
		}
	}
	return out
}

// Top returns the visible mount at path.
func (t Table) Top(path string) (mount.MountInfo, bool) {
	ms := t.At(path)
	if len(ms) == 0 {
		return mount.MountInfo{}, false
	}
	return ms[len(ms)-1], true
}

// OfDevice returns every mount of the filesystem on device number dev.
func (t Table) OfDevice(dev uint64) []mount.MountInfo {
	var out []mount.MountInfo
	for _, m := range t {
		if DeviceOf(m) == dev {
			out = append(out, m)
		}
	}
	return out
}

// DeviceOf is the device number of a mount's filesystem. For a bind mount
// of a device node (a raw block publish) it is the device filesystem's
// number, not the node's: BlockNodeOf tells that one.
func DeviceOf(m mount.MountInfo) uint64 {
	return unix.Mkdev(uint32(m.Major), uint32(m.Minor))
}

// BlockNodeOf returns the device number of the block device node mounted
// at m (a raw block publish binds the node onto a file), or false when m is
// not such a mount. Only single-file binds (root other than "/") are
// stat'ed, which keeps stat away from whole filesystems that may hang.
func BlockNodeOf(m mount.MountInfo) (uint64, bool) {
	if m.Root == "/" {
		return 0, false
	}
	var st unix.Stat_t
	if err := unix.Stat(m.MountPoint, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, false
	}
	return st.Rdev, true
}

// Ownership is whose mount is at a path.
type Ownership int

const (
	// NotMounted means nothing is mounted at the path; nothing to undo.
	NotMounted Ownership = iota
	// Owned means the visible mount belongs to the volume.
	Owned
	// Foreign means the visible mount belongs to something else; a node
	// RPC must neither unmount it nor bind-mount from it.
	Foreign
)

// Owns decides whether a mount belongs to a volume.
type Owns func(m mount.MountInfo) bool

// Owner tells whose the visible mount at path is.
func (t Table) Owner(path string, owns Owns) (mount.MountInfo, Ownership) {
	m, ok := t.Top(path)
	switch {
	case !ok:
		return m, NotMounted
	case owns(m):
		return m, Owned
	}
	return m, Foreign
}

// OnDevice owns the mounts of the filesystem on device number dev, and the
// bind mounts of its device node.
func OnDevice(dev uint64) Owns {
	return func(m mount.MountInfo) bool {
		if node, ok := BlockNodeOf(m); ok {
			return node == dev
		}
		return DeviceOf(m) == dev
	}
}

// FromSource owns the mounts whose source is source ("server:/export",
// "mon1,mon2:/volumes/x"), ignoring a trailing slash on the path part, as
// the kernel may show the export with or without one.
func FromSource(source string) Owns {
	want := normalSource(source)
	return func(m mount.MountInfo) bool { return want != "" && normalSource(m.Source) == want }
}

func normalSource(s string) string {
	s = strings.TrimSpace(s)
	for len(s) > 1 && strings.HasSuffix(s, "/") && !strings.HasSuffix(s, ":/") {
		s = strings.TrimSuffix(s, "/")
	}
	return s
}

// Describe names a mount for a message: source, filesystem, device number.
func Describe(m mount.MountInfo) string {
	return fmt.Sprintf("%s (%s, device %d:%d, root %s)", m.Source, m.FsType, m.Major, m.Minor, m.Root)
}
