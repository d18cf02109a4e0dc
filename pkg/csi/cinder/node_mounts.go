package cinder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/device"
)

// mountTable is a snapshot of the mount table. The node decides from it
// rather than from IsLikelyNotMountPoint, which cannot see a bind mount from
// the same filesystem and so would let publishes stack.
type mountTable []mount.MountInfo

func (ns *NodeServer) readMounts() (mountTable, error) {
	infos, err := mount.ParseMountInfo(ns.opts.MountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table %s: %w", ns.opts.MountInfoPath, err)
	}
	return infos, nil
}

// canonical resolves symlinks in path when it exists, as the mount table
// shows resolved paths.
func canonical(path string) string {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		return resolved
	}
	return filepath.Clean(path)
}

// at returns the mounts at path, bottom first.
func (t mountTable) at(path string) []mount.MountInfo {
	path = canonical(path)
	var out []mount.MountInfo
	for _, m := range t {
		if m.MountPoint == path {
			out = append(out, m)
		}
	}
	return out
}

// top returns the visible mount at path.
func (t mountTable) top(path string) (mount.MountInfo, bool) {
	ms := t.at(path)
	if len(ms) == 0 {
		return mount.MountInfo{}, false
	}
	return ms[len(ms)-1], true
}

// ofDevice returns every mount of the filesystem on the given device number.
func (t mountTable) ofDevice(rdev uint64) []mount.MountInfo {
	var out []mount.MountInfo
	for _, m := range t {
		if uint32(m.Major) == unix.Major(rdev) && uint32(m.Minor) == unix.Minor(rdev) {
			out = append(out, m)
		}
	}
	return out
}

func hasOption(opts []string, want string) bool {
	for _, o := range opts {
		if o == want {
			return true
		}
	}
	return false
}

// rdevOf returns the device number of a block device node.
func rdevOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", path)
	}
	return st.Rdev, nil
}

// unmountAll removes every mount stacked at path, top first.
func (ns *NodeServer) unmountAll(path string) error {
	for range 16 {
		table, err := ns.readMounts()
		if err != nil {
			return err
		}
		if len(table.at(path)) == 0 {
			return nil
		}
		if err := ns.mounter.Unmount(path); err != nil {
			return fmt.Errorf("unmounting %s: %w", path, err)
		}
	}
	return fmt.Errorf("%s is still mounted after 16 unmounts", path)
}

// removePath removes a target file or empty directory; a missing one is
// fine.
func removePath(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// deviceError maps a device lookup failure to a status.
func deviceError(volumeID string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, device.ErrMismatch):
		return errPrecondition("refusing the device found for volume %s: %v", volumeID, err)
	case errors.Is(err, device.ErrNotFound):
		return errNotFound("volume %s is not attached to this node, or its device has not appeared yet: %v", volumeID, err)
	}
	return StatusFromError(err, "finding the device of volume %s", volumeID)
}
