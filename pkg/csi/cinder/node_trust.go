package cinder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// The node's trust boundary (docs/design.md, "Trust boundary"): what a node
// request names is checked before anything is created, mounted, formatted
// or unmounted. A volume id must be a Cinder UUID; a staging or target path
// must lie beneath the kubelet root, reached without a symlink; mount
// flags come from an allow-list; and a mount is bind-mounted from or
// unmounted only when it is this volume's device.

// validateVolumeID refuses ids that are not Cinder volume ids. The id is
// matched against disk serials and spliced into /dev/disk/by-id names, so
// only the shape Cinder gives (a UUID) may pass: a shorter id would match
// the 20-character serial of any volume it is a prefix of.
func validateVolumeID(id string) error {
	if err := hostpath.CheckID("volume_id", id); err != nil {
		return errInvalid("%v", err)
	}
	if !device.IsUUID(id) {
		return errInvalid("volume_id %s is not a Cinder volume id: Cinder volume ids are UUIDs (8-4-4-4-12 hexadecimal digits)", hostpath.Quote(id))
	}
	return nil
}

// pathField is a path in a request: the spec's field name and where its
// value lives, so that checking replaces it with the resolved path.
type pathField struct {
	name  string
	value *string
}

// checkNodeRequest checks the volume id and then resolves each path field
// beneath the kubelet root, answering InvalidArgument for the first bad
// one. The fields hold the resolved (clean) paths afterwards.
func (ns *NodeServer) checkNodeRequest(volumeID string, paths ...pathField) error {
	if err := validateVolumeID(volumeID); err != nil {
		return err
	}
	for _, p := range paths {
		resolved, err := ns.root.Resolve(p.name, *p.value)
		if err != nil {
			return errHostPath(err)
		}
		*p.value = resolved
	}
	return nil
}

// checkVolumeAtPath checks the volume id and volume_path of
// NodeGetVolumeStats and NodeExpandVolume. The spec answers NotFound when
// the volume is not at volume_path. A relative path, or one outside the
// kubelet root, can never be where this driver published a volume, so
// that is NotFound (csi-sanity checks the relative case); a malformed or
// overlong path stays InvalidArgument. So is an id of another shape than a
// Cinder UUID: no such volume can be on this node, and these two RPCs
// change nothing before the check (csi-sanity's own ids, fake-vol-id-...,
// expect NotFound here). Empty, overlong or control-character ids stay
// InvalidArgument.
func (ns *NodeServer) checkVolumeAtPath(volumeID string, path *string) error {
	if err := hostpath.CheckID("volume_id", volumeID); err != nil {
		return errInvalid("%v", err)
	}
	p := *path
	if p != "" && !strings.HasPrefix(p, "/") && !strings.ContainsRune(p, 0) && len(p) < hostpath.MaxPathBytes {
		return errNotFound("volume %s is not published at %s: volume_path must be the absolute path it was published at", volumeID, hostpath.Quote(p))
	}
	resolved, err := ns.root.Resolve("volume_path", p)
	switch {
	case errors.Is(err, hostpath.ErrOutsideRoot), errors.Is(err, hostpath.ErrSystemPath), errors.Is(err, hostpath.ErrSymlink):
		return errNotFound("volume %s is not published at %s: %v", volumeID, hostpath.Quote(p), err)
	case err != nil:
		return errHostPath(err)
	}
	if !device.IsUUID(volumeID) {
		return errNotFound("volume %s is not on this node: it is not a Cinder volume id (a UUID)", hostpath.Quote(volumeID))
	}
	*path = resolved
	return nil
}

// cinderMountFlags are the mount flags a Cinder volume capability may
// carry: the generic ones plus the ext and XFS options that only tune the
// filesystem. "defaults" and "nouuid" are what the driver adds itself.
var cinderMountFlags = hostpath.NewMountFlagAllowList(
	"discard", "nodiscard", "nouuid", "noload", "norecovery",
	"acl", "noacl", "user_xattr", "nouser_xattr",
	"barrier", "nobarrier", "barrier=", "commit=", "data=", "errors=",
	"journal_checksum", "nojournal_checksum", "journal_async_commit",
	"delalloc", "nodelalloc", "dax", "dax=", "init_itable", "init_itable=", "noinit_itable",
	"quota", "noquota", "usrquota", "grpquota", "prjquota", "uquota", "gquota", "pquota",
	"inode32", "inode64", "largeio", "nolargeio", "swalloc", "wsync", "filestreams",
	"allocsize=", "logbufs=", "logbsize=", "stripe=", "resuid=", "resgid=",
)

// checkMountFlags refuses flags outside cinderMountFlags.
func checkMountFlags(field string, flags []string) error {
	if err := cinderMountFlags.Check(field, flags); err != nil {
		return errHostPath(err)
	}
	return nil
}

// volumeMounts decides which mounts belong to a volume, for the ownership
// checks before an unmount or a bind mount.
//
// With the volume's disk on the node, a mount is the volume's when it is
// of that disk (its filesystem, or a bind of its device node). Without it
// (a forced detach, a disk that went away), a mount is the volume's only
// when its disk has gone as well, or when that disk's serial still names
// the volume: a stale mount of a vanished disk must stay removable, but a
// mount of any disk that is present and is not the volume is never ours.
// Anonymous devices (major 0: tmpfs, overlay, proc) are never a volume.
func (ns *NodeServer) volumeMounts(ctx context.Context, volumeID string) (hostpath.Owns, *device.Device) {
	if dev, err := ns.finder.Lookup(ctx, volumeID); err == nil {
		if rdev, err := rdevOf(dev.Node); err == nil {
			return hostpath.OnDevice(rdev), dev
		}
	}
	return func(m mount.MountInfo) bool {
		rdev := hostpath.DeviceOf(m)
		if node, ok := hostpath.BlockNodeOf(m); ok {
			rdev = node
		}
		if unix.Major(rdev) == 0 {
			return false
		}
		name := ns.finder.SysNameFor(rdev)
		if name == "" {
			return !ns.deviceExists(rdev)
		}
		return device.SerialMatches(ns.finder.SerialOf(name), volumeID)
	}, nil
}

// deviceExists reports whether the kernel still has a block device with
// number rdev, partitions included (<SysRoot>/block lists whole disks
// only; <SysRoot>/dev/block lists every block device).
func (ns *NodeServer) deviceExists(rdev uint64) bool {
	_, err := os.Stat(fmt.Sprintf("%s/dev/block/%d:%d", ns.opts.SysRoot, unix.Major(rdev), unix.Minor(rdev)))
	return err == nil
}

// errForeignMount answers a request whose path holds a mount that is not
// the volume's: nothing was unmounted.
func errForeignMount(volumeID, field, path string, m mount.MountInfo, dev *device.Device) error {
	want := "its disk is not on this node"
	if dev != nil {
		want = "the volume is " + dev.Node
	}
	return errPrecondition("%s %s holds %s, which is not volume %s (%s); refusing to unmount it",
		field, path, hostpath.Describe(m), volumeID, want)
}

// deviceNote names the volume's disk for a message, when it is known.
func deviceNote(dev *device.Device) string {
	if dev == nil {
		return " (the volume's disk is not on this node)"
	}
	return " (the volume is " + dev.Node + ")"
}
