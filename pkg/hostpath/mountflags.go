package hostpath

import (
	"fmt"
	"strings"
)

// MountFlagAllowList is the set of mount options a volume capability may
// carry. kubelet passes the StorageClass's mountOptions (and an SELinux
// context=) through unchanged, so whoever can write a StorageClass or a
// PersistentVolume chooses them; an option outside the list is refused
// rather than handed to mount(2) or mount(8).
type MountFlagAllowList struct {
	plain  map[string]bool // "noatime"
	valued map[string]bool // "commit" for commit=<value>
}

// GenericMountFlags are the per-mount and generic superblock options every
// Linux filesystem accepts and that only restrict or tune the mount. A name
// ending in "=" takes a value.
var GenericMountFlags = []string{
	"defaults", "ro", "rw",
	"atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime",
	"diratime", "nodiratime", "lazytime", "nolazytime",
	"suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"sync", "async", "dirsync", "iversion", "noiversion",
	// SELinux labels; kubelet's SELinuxMount feature adds context="...".
	"context=", "fscontext=", "defcontext=", "rootcontext=", "seclabel",
}

// refusedMountFlags change what is mounted, or where mounts propagate, or
// make mount(8) do more than mount (set up a loop device, run helpers).
// They are refused with a reason even if an allow-list names them.
var refusedMountFlags = map[string]string{
	"remount":     "it changes an existing mount instead of making one",
	"bind":        "it makes a bind mount of another path",
	"rbind":       "it makes a bind mount of another path",
	"move":        "it moves an existing mount",
	"shared":      "it changes mount propagation",
	"rshared":     "it changes mount propagation",
	"private":     "it changes mount propagation",
	"rprivate":    "it changes mount propagation",
	"slave":       "it changes mount propagation",
	"rslave":      "it changes mount propagation",
	"unbindable":  "it changes mount propagation",
	"runbindable": "it changes mount propagation",
	"loop":        "it makes mount(8) set up a loop device over the source",
	"offset":      "it is a loop device option",
	"sizelimit":   "it is a loop device option",
	"owner":       "it lets an unprivileged user unmount the volume",
	"user":        "it lets an unprivileged user unmount the volume",
	"users":       "it lets an unprivileged user unmount the volume",
	"group":       "it lets an unprivileged user unmount the volume",
}

// NewMountFlagAllowList returns the list of GenericMountFlags plus names,
// a driver's filesystem-specific options ("discard", "commit=", "vers=").
func NewMountFlagAllowList(names ...string) MountFlagAllowList {
	l := MountFlagAllowList{plain: map[string]bool{}, valued: map[string]bool{}}
	for _, n := range append(append([]string(nil), GenericMountFlags...), names...) {
		if key, ok := strings.CutSuffix(n, "="); ok {
			l.valued[key] = true
		} else {
			l.plain[n] = true
		}
	}
	return l
}

// Check refuses the first flag of field (for messages:
// "volume_capability.mount.mount_flags") that is not on the list.
func (l MountFlagAllowList) Check(field string, flags []string) error {
	for _, f := range flags {
		if detail := l.refusal(f); detail != "" {
			return &Error{Field: field, Value: f, Reason: ErrMountFlag, Detail: detail}
		}
	}
	return nil
}

// refusal says why flag is refused, or "" when it is allowed.
func (l MountFlagAllowList) refusal(flag string) string {
	if flag == "" {
		return "it is empty"
	}
	if strings.HasPrefix(flag, "-") {
		return "it reads as a command-line option of mount(8)"
	}
	for _, r := range flag {
		if r <= ' ' || r == 0x7f {
			return "it contains a space or a control character"
		}
	}
	key, value, valued := strings.Cut(flag, "=")
	if why, ok := refusedMountFlags[strings.ToLower(key)]; ok {
		return why
	}
	if strings.HasPrefix(strings.ToLower(key), "x-") {
		return "x- options are instructions to mount(8) and its helpers, not mount options"
	}
	switch {
	case !valued && l.plain[key]:
		return ""
	case !valued && strings.Contains(key, ","):
		return "one flag holds several options; pass each as its own flag"
	case !valued:
		return fmt.Sprintf("%q is not an option this driver passes to mount", key)
	case !l.valued[key]:
		return fmt.Sprintf("%q does not take a value here, or is not an option this driver passes to mount", key)
	}
	return valueRefusal(value)
}

// valueRefusal checks an option value: plain characters, or a
// double-quoted string (an SELinux context "u:r:t:s0:c1,c2" has commas),
// so that no value can smuggle a second option past the list.
func valueRefusal(value string) string {
	if inner, ok := strings.CutPrefix(value, `"`); ok {
		inner, ok = strings.CutSuffix(inner, `"`)
		if !ok || inner == "" || strings.ContainsRune(inner, '"') {
			return "its quoted value is not closed, is empty or holds a quote"
		}
		if !plainValue(inner, ",") {
			return "its quoted value has characters a mount option value cannot have"
		}
		return ""
	}
	if value == "" || !plainValue(value, "") {
		return "its value is empty or has characters a mount option value cannot have (a comma would start another option)"
	}
	return ""
}

func plainValue(v, extra string) bool {
	for _, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:/@+-"+extra, r)
		if !ok {
			return false
		}
	}
	return true
}
