package cinder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/blockprobe"
	"github.com/cinder-csi/cinder-csi/pkg/csi/bindmount"
	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
	"github.com/cinder-csi/cinder-csi/pkg/sysmount"
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

// bindMount bind-mounts source (a directory or a device node) at target
// with mount(2), read-only when asked, and records it as one mount.
// mount-utils runs mount(8) twice for every bind (the bind, then a remount
// repeating the source's flags); a new bind already carries the source's
// per-mount flags, so only read-only needs the remount, and each process
// costs 10-40 ms on a small node (docs/benchmarks.md, Node).
func (ns *NodeServer) bindMount(source, target string, readOnly bool) (err error) {
	start := time.Now()
	defer func() { ns.opts.Metrics.ObserveMount(time.Since(start), err) }()
	return bindmount.Mount(source, target, readOnly)
}

// mountFilesystem mounts the filesystem on device at target: with mount(2)
// on the host when sysmount handles the filesystem and options, else with
// the mounter's mount(8).
func (ns *NodeServer) mountFilesystem(device, target, fsType string, options []string) (err error) {
	if !ns.hostMount {
		return ns.mounter.Mount(device, target, fsType, options)
	}
	start := time.Now()
	err = sysmount.Mount(device, target, fsType, options)
	if errors.Is(err, sysmount.ErrUseMount8) {
		return ns.mounter.Mount(device, target, fsType, options)
	}
	ns.opts.Metrics.ObserveMount(time.Since(start), err)
	return err
}

// diskFormat names the filesystem or partition table on a device, "" for
// none. A device whose probed regions are all zero is blank without asking
// blkid, which costs a process (blockprobe); anything else, or a probe
// that fails, goes to blkid.
func (ns *NodeServer) diskFormat(logger logr.Logger, devicePath string) (string, error) {
	blank, err := blockprobe.Blank(devicePath)
	if err != nil {
		logger.V(4).Info("Zero probe failed; asking blkid", "device", devicePath, "err", err.Error())
	}
	if blank {
		return "", nil
	}
	return ns.mounter.GetDiskFormat(devicePath)
}

// unmountOwned removes the mounts stacked at path, top first, as long as
// each is the volume's. A mount of anything else stops it with
// FailedPrecondition, leaving that mount and everything under it.
func (ns *NodeServer) unmountOwned(volumeID, field, path string, owns hostpath.Owns, dev *device.Device) error {
	for range 16 {
		table, err := ns.readMounts()
		if err != nil {
			return StatusFromError(err, "unmounting volume %s", volumeID)
		}
		m, owner := hostpath.Table(table).Owner(path, owns)
		switch owner {
		case hostpath.NotMounted:
			return nil
		case hostpath.Foreign:
			return errForeignMount(volumeID, field, path, m, dev)
		}
		if err := ns.mounter.Unmount(path); err != nil {
			return StatusFromError(fmt.Errorf("unmounting %s: %w", path, err), "unmounting volume %s", volumeID)
		}
	}
	return errPrecondition("%s %s of volume %s is still mounted after 16 unmounts", field, path, volumeID)
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
