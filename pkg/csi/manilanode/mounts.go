package manilanode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/util/backoff"
)

// mountTable is a snapshot of the mount table. The node decides from it,
// not from IsLikelyNotMountPoint, which cannot see a bind mount from the
// same filesystem.
type mountTable []mount.MountInfo

func (ns *NodeServer) readMounts() (mountTable, error) {
	t, err := ns.mounter.MountInfo()
	return mountTable(t), err
}

// top returns the visible mount at path.
func (t mountTable) top(path string) (mount.MountInfo, bool) {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].MountPoint == path {
			return t[i], true
		}
	}
	return mount.MountInfo{}, false
}

// sourceMatches reports whether a mount with no stage record (the state
// directory was lost) is visibly this share: NFS and the CephFS kernel
// client show the export as the source. A ceph-fuse mount shows only
// "ceph-fuse", so it can never be adopted this way.
func sourceMatches(m mount.MountInfo, spec *ShareSpec) bool {
	switch {
	case spec.Protocol == ProtocolNFS:
		return strings.HasPrefix(m.FsType, "nfs") && m.Source == spec.Export.String()
	case spec.Mounter == MounterKernel:
		return m.FsType == "ceph" && m.Source == spec.Export.String()
	}
	return false
}

// plausiblyOurs reports whether a mount at a staging path whose record
// was written but not completed (a crash between the mount and the
// record) can be the mount that record describes: the filesystem type of
// its protocol and mounter, and for NFS the export as its source.
func plausiblyOurs(m mount.MountInfo, spec *ShareSpec) bool {
	switch {
	case spec.Protocol == ProtocolNFS:
		return strings.HasPrefix(m.FsType, "nfs") && m.Source == spec.Export.String()
	case spec.Mounter == MounterKernel:
		return m.FsType == "ceph"
	}
	return m.FsType == "fuse.ceph-fuse" || m.FsType == "fuse.ceph"
}

// sameShare reports whether a record and a request mount the same share
// the same way; options may differ (a remount is not asked for).
func sameShare(a, b *ShareSpec) bool {
	return a.Protocol == b.Protocol && a.Export.String() == b.Export.String() &&
		a.Mounter == b.Mounter && a.ClientID == b.ClientID && a.FSName == b.FSName
}

// describe names a mount in messages.
func describe(m mount.MountInfo) string {
	return fmt.Sprintf("%s from %s (%d:%d %s)", m.FsType, m.Source, m.Major, m.Minor, m.Root)
}

// maxStackedMounts bounds the unmount loop: a path where kubelet or an
// earlier bug stacked more than this is left for a human.
const maxStackedMounts = 16

// unmountOwn removes the mounts at path, top first, while they are the
// filesystem id names (nil: any mount, for a broken one found at stage).
// It stops at a mount that is not, leaving it in place.
func (ns *NodeServer) unmountOwn(path string, id *mountID) error {
	return ns.unmountWhile(path, func(m mount.MountInfo) bool { return id == nil || id.sameFilesystem(m) })
}

// unmountOwnOf is unmountOwn for every mount rec owns (current or
// former stage mounts and their binds).
func (ns *NodeServer) unmountOwnOf(path string, rec *stageRecord) error {
	return ns.unmountWhile(path, rec.owns)
}

// unmountWhile removes the mounts at path, top first, while ours says
// they are the volume's, and stops with FailedPrecondition at one that is
// not, leaving it in place.
func (ns *NodeServer) unmountWhile(path string, ours func(mount.MountInfo) bool) error {
	for range maxStackedMounts {
		table, err := ns.readMounts()
		if err != nil {
			return err
		}
		top, mounted := table.top(path)
		if !mounted {
			return nil
		}
		if !ours(top) {
			return errPrecondition("%s still holds %s, which is not this volume's; it was left in place", path, describe(top))
		}
		if err := ns.mounter.Unmount(path); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s is still mounted after %d unmounts", path, maxStackedMounts)
}

// busyBackoff spaces the retries of an unmount that answered EBUSY: a
// ceph-fuse mount a few milliseconds old (its daemon still busy on its
// root) refuses to go. csi-sanity on the rig's CephFS unstaged 8 ms after
// the unpublish, 25 ms after the stage, and got EBUSY; the same call 8 s
// later succeeded (tests/e2e/README.md, "csi-sanity with the node specs").
// 20 ms doubling to 500 ms, busyRetries times: ~1.5 s in all, within the
// request's deadline.
var busyBackoff = backoff.Exponential{First: 20 * time.Millisecond, Max: 500 * time.Millisecond}

const busyRetries = 6

// retryBusy runs unmount again while it fails with EBUSY, within ctx and
// busyRetries; still busy then is Unavailable (kubelet retries), never
// Internal: a process with a file or its cwd under path holds it.
func retryBusy(ctx context.Context, path string, unmount func() error) error {
	for n := 1; ; n++ {
		err := unmount()
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		if n > busyRetries || backoff.SleepWithin(ctx, busyBackoff.Delay(n)) != nil {
			return errUnavailable("%s is busy (a process has a file or its working directory under it): %v; retry later", path, err)
		}
	}
}

// removeDir removes an empty mount point; a missing one is fine, and one
// with files left in it stays (they were written under the mount, by
// someone other than the pod).
func removeDir(path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("removing %s: %w", path, err)
}
