// Package fsopts holds the filesystem rules the node's stage and the Kata
// publisher must agree on: which filesystems one request accepts, and the
// mount option every XFS mount of a volume needs.
package fsopts

import "slices"

// Family groups the filesystems one kernel driver mounts: ext2, ext3 and
// ext4 are "ext" (an ext4 request accepts an existing ext3, as mkfs and
// mount by hand would); any other name is its own family.
func Family(fstype string) string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "ext"
	}
	return fstype
}

// SameFamily reports whether a and b are mounted by the same driver.
func SameFamily(a, b string) bool { return Family(a) == Family(b) }

// IsExt reports an ext2, ext3 or ext4 filesystem.
func IsExt(fstype string) bool { return Family(fstype) == "ext" }

// WithNoUUID returns opts with nouuid added for XFS: clones and restores
// carry their source's UUID, and XFS refuses to mount a second filesystem
// with a UUID already mounted on the host (or in the Kata guest) without
// it. Other filesystems get opts unchanged.
func WithNoUUID(fstype string, opts []string) []string {
	if fstype == "xfs" && !slices.Contains(opts, "nouuid") {
		return append(opts, "nouuid")
	}
	return opts
}
