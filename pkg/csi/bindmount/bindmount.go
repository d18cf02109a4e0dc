// Package bindmount is the bind mount both drivers' node services make
// with mount(2): one bind, and a remount only for read-only.
package bindmount

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Mount bind-mounts source (a directory or a device node) at target,
// read-only when asked. mount-utils runs mount(8) twice for every bind
// (the bind, then a remount repeating the source's flags); a new bind
// already carries the source's per-mount flags, so only read-only needs the
// remount (a bind cannot be made read-only in one call).
func Mount(source, target string, readOnly bool) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s at %s: %w", source, target, err)
	}
	if !readOnly {
		return nil
	}
	if err := remountReadOnly(target); err != nil {
		// Never leave a writable mount where read-only was asked for.
		if uerr := unix.Unmount(target, 0); uerr != nil {
			return fmt.Errorf("%w; removing the writable bind mount at %s also failed: %v", err, target, uerr)
		}
		return err
	}
	return nil
}

// bindFlags maps the per-mount flags statfs reports to the mount(2) flags
// a bind remount must repeat: a remount replaces them all, and dropping
// one that a less privileged mount namespace locked fails with EPERM.
var bindFlags = []struct{ st, ms uintptr }{
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

// remountReadOnly makes the bind mount at target read-only, keeping its
// other per-mount flags. The read-only flag of a bind can only be set by
// a remount (MS_BIND|MS_REMOUNT|MS_RDONLY).
func remountReadOnly(target string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return fmt.Errorf("statfs %s before the read-only remount: %w", target, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range bindFlags {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return fmt.Errorf("remounting the bind mount at %s read-only: %w", target, err)
	}
	return nil
}
