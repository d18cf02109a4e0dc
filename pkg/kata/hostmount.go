package kata

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	mount "k8s.io/mount-utils"
)

// The host side of a direct volume: the staging mount that is given up while
// the guest owns the device and restored afterwards.

const procMountInfo = "/proc/self/mountinfo"

// hostMounts wraps the mounter and the mount table.
type hostMounts struct {
	fm            *mount.SafeFormatAndMount
	mountInfoPath string
}

// devNum is a block device's major:minor.
type devNum struct{ major, minor uint32 }

func (d devNum) String() string { return fmt.Sprintf("%d:%d", d.major, d.minor) }

// blockDevice stats path (following symlinks, as Kata does) and returns its
// device number; anything but a block device is an error.
func blockDevice(path string) (devNum, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return devNum{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return devNum{}, fmt.Errorf("%s is not a block device", path)
	}
	return devNum{unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))}, nil
}

// deviceSize returns the size in bytes of a block device.
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}

func (h *hostMounts) table() ([]mount.MountInfo, error) {
	mis, err := mount.ParseMountInfo(h.mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return mis, nil
}

// canonical resolves symlinks of an existing path so it compares with the
// mount table; a missing path stays as given (cleaned).
func canonical(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return filepath.Clean(path)
}

// mountAt returns the topmost mount at path, or nil.
func (h *hostMounts) mountAt(path string) (*mount.MountInfo, error) {
	mis, err := h.table()
	if err != nil {
		return nil, err
	}
	want := canonical(path)
	var top *mount.MountInfo
	for i := range mis {
		if mis[i].MountPoint == want {
			top = &mis[i]
		}
	}
	return top, nil
}

// mountsOf lists the mount points of a device's filesystems.
func (h *hostMounts) mountsOf(d devNum) ([]string, error) {
	mis, err := h.table()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mi := range mis {
		if uint32(mi.Major) == d.major && uint32(mi.Minor) == d.minor {
			out = append(out, mi.MountPoint)
		}
	}
	return out, nil
}

func mountedDevice(mi *mount.MountInfo) devNum {
	return devNum{uint32(mi.Major), uint32(mi.Minor)}
}

// diskFormat returns the filesystem on the device ("" when blank).
func (h *hostMounts) diskFormat(device string) (string, error) {
	return h.fm.GetDiskFormat(device)
}

// formatAndMount makes sure the device has a filesystem and mounts it at
// staging (the normal staging path, which never reformats a filesystem).
func (h *hostMounts) formatAndMount(device, staging, fstype string, options []string) error {
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return err
	}
	return h.fm.FormatAndMount(device, staging, fstype, options)
}

// typedMount mounts an existing filesystem, never formatting: used to
// restore staging on unpublish, when the guest may have changed anything on
// the device and only a plain mount is safe.
func (h *hostMounts) typedMount(device, staging, fstype string, options []string) error {
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return err
	}
	return h.fm.Mount(device, staging, fstype, options)
}

func (h *hostMounts) unmount(path string) error {
	return h.fm.Unmount(path)
}

// removeDir removes an empty directory; a missing one is fine.
func removeDir(path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
