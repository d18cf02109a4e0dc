// Package sysmount mounts a block filesystem with mount(2), without
// running mount(8).
//
// mount(8) is one process per stage, about 8-15 ms on a 2-CPU node
// (docs/benchmarks.md, Node), and for ext and XFS on a block device it only
// splits the options into flags and a data string and calls mount(2): they
// have no mount helper. Parse does that split the way libmount does;
// anything it cannot vouch for (user mounts, loop setup, SELinux contexts
// that libmount translates, another filesystem) is ErrUseMount8 and the
// caller runs mount(8) as before.
package sysmount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUseMount8 means the mount needs mount(8): the filesystem or an option
// is one Parse does not handle.
var ErrUseMount8 = errors.New("this mount needs mount(8)")

// Filesystems mount(2) serves here: kernel filesystems with no
// /sbin/mount.<type> helper.
var Filesystems = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true}

type flagOption struct {
	flag  uintptr
	clear bool
}

// flagOptions are mount(8)'s filesystem-independent options that become
// mount(2) flags (mount(8), FILESYSTEM-INDEPENDENT MOUNT OPTIONS).
var flagOptions = map[string]flagOption{
	"ro": {unix.MS_RDONLY, false}, "rw": {unix.MS_RDONLY, true},
	"nosuid": {unix.MS_NOSUID, false}, "suid": {unix.MS_NOSUID, true},
	"nodev": {unix.MS_NODEV, false}, "dev": {unix.MS_NODEV, true},
	"noexec": {unix.MS_NOEXEC, false}, "exec": {unix.MS_NOEXEC, true},
	"sync": {unix.MS_SYNCHRONOUS, false}, "async": {unix.MS_SYNCHRONOUS, true},
	"dirsync": {unix.MS_DIRSYNC, false},
	"noatime": {unix.MS_NOATIME, false}, "atime": {unix.MS_NOATIME, true},
	"nodiratime": {unix.MS_NODIRATIME, false}, "diratime": {unix.MS_NODIRATIME, true},
	"relatime": {unix.MS_RELATIME, false}, "norelatime": {unix.MS_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, false}, "nostrictatime": {unix.MS_STRICTATIME, true},
	"lazytime": {unix.MS_LAZYTIME, false}, "nolazytime": {unix.MS_LAZYTIME, true},
	"iversion": {unix.MS_I_VERSION, false}, "noiversion": {unix.MS_I_VERSION, true},
	"mand": {unix.MS_MANDLOCK, false}, "nomand": {unix.MS_MANDLOCK, true},
	"silent": {unix.MS_SILENT, false}, "loud": {unix.MS_SILENT, true},
	"nosymfollow": {unix.MS_NOSYMFOLLOW, false},
}

// userspaceOptions mean something to mount(8) or fstab only; libmount
// drops them before mount(2).
var userspaceOptions = map[string]bool{"defaults": true, "auto": true, "noauto": true, "nofail": true, "_netdev": true}

// needsMount8 are options whose meaning lives in mount(8): user mounts
// (which imply more flags), loop set-up, propagation and bind or move
// operations, and SELinux contexts that libmount may translate.
var needsMount8 = []string{
	"user", "nouser", "users", "owner", "group", "loop", "offset", "sizelimit", "encryption",
	"remount", "bind", "rbind", "move", "shared", "private", "slave", "unbindable",
	"context", "fscontext", "defcontext", "rootcontext", "helper",
}

// Parse splits mount options into mount(2) flags and the filesystem's data
// string, as libmount does, in order (a later "rw" clears an earlier "ro").
func Parse(fstype string, options []string) (uintptr, string, error) {
	if !Filesystems[fstype] {
		return 0, "", fmt.Errorf("%w: filesystem %q", ErrUseMount8, fstype)
	}
	var flags uintptr
	var data []string
	for _, opt := range options {
		for o := range strings.SplitSeq(opt, ",") {
			name, _, _ := strings.Cut(o, "=")
			switch f, isFlag := flagOptions[o]; {
			case o == "" || userspaceOptions[o] || strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "X-") || name == "comment":
			case isFlag && f.clear:
				flags &^= f.flag
			case isFlag:
				flags |= f.flag
			case isMount8Option(name):
				return 0, "", fmt.Errorf("%w: option %q", ErrUseMount8, o)
			default:
				data = append(data, o)
			}
		}
	}
	return flags, strings.Join(data, ","), nil
}

func isMount8Option(name string) bool {
	for _, n := range needsMount8 {
		if name == n || name == "make-"+n || name == "make-r"+n {
			return true
		}
	}
	return false
}

// Mount mounts the filesystem on source at target with mount(2). It
// returns ErrUseMount8, having done nothing, for a mount it does not
// handle.
func Mount(source, target, fstype string, options []string) error {
	flags, data, err := Parse(fstype, options)
	if err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount(2) %s on %s as %s with %q: %w%s", source, target, fstype, strings.Join(options, ","), err, hint(err))
	}
	return nil
}

// hint says what mount(8) would have said for the errors that are not
// self-explanatory; the kernel log has the details.
func hint(err error) string {
	switch {
	case errors.Is(err, unix.EINVAL):
		return " (a bad option or a damaged superblock; see the kernel log)"
	case errors.Is(err, unix.EBUSY):
		return " (the device is already mounted or in use)"
	case errors.Is(err, unix.ENODEV):
		return " (the kernel does not know this filesystem)"
	}
	return ""
}
