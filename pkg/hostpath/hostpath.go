// Package hostpath decides which host paths, mount flags and mounts a CSI
// node plugin may act on. It is driver-agnostic: the Cinder and Manila node
// services both use it.
//
// A node plugin runs as root in the host's mount namespace, so a path in a
// request is a path on the host. kubelet only ever sends paths under its
// root directory (--root-dir, /var/lib/kubelet by default), so anything
// else is refused before it reaches mkdir, mount or unmount:
//
//   - Root.Resolve accepts a staging or target path only when it names an
//     entry strictly beneath the kubelet root, reached without a symlink and
//     without "..", and never under /proc, /sys or /dev. The existing part
//     of the path is opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
//     from the root, so the kernel, not a string comparison, decides that it
//     stays inside; kernels without openat2 (before 5.6) get an lstat walk.
//   - MountFlagAllowList.Check accepts the mount flags of a volume
//     capability only from an allow-list: flags that change what is mounted
//     or how mounts propagate (remount, bind, shared, ...) and anything that
//     reads as a command-line option are refused.
//   - Table reads /proc/self/mountinfo and Table.Owner tells whether the
//     mount at a path belongs to a volume (by device number for block
//     volumes, by mount source for shares), so that a node RPC mounts over,
//     bind-mounts from or unmounts only its own volume.
//
// Every refusal is an *Error wrapping one of the Err* sentinels; the CSI
// layer maps them to InvalidArgument (errors.Is on the sentinel tells which
// check failed). Messages quote the path, shortened when it is very long.
package hostpath

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultKubeletRoot is kubelet's default --root-dir.
const DefaultKubeletRoot = "/var/lib/kubelet"

// MaxPathBytes is PATH_MAX on Linux including the terminating NUL: a path
// of this length or more fails every system call with ENAMETOOLONG.
const MaxPathBytes = 4096

// MaxNameBytes is NAME_MAX, the longest single path component.
const MaxNameBytes = 255

// MaxIDBytes bounds the ids (volume, node, share) a node RPC accepts. The
// CSI spec lets a plugin choose; 255 keeps an id usable as a file name.
const MaxIDBytes = 255

// Sentinels for the reason a path, flag or id was refused.
var (
	// ErrMalformed: empty, relative, a NUL byte or a ".." component.
	ErrMalformed = errors.New("malformed")
	// ErrTooLong: over MaxPathBytes, or a component over MaxNameBytes; for
	// ids, over MaxIDBytes.
	ErrTooLong = errors.New("too long")
	// ErrSystemPath: under /proc, /sys or /dev.
	ErrSystemPath = errors.New("a system path")
	// ErrOutsideRoot: not strictly beneath the kubelet root.
	ErrOutsideRoot = errors.New("outside the kubelet root")
	// ErrSymlink: a component of the path is a symbolic link.
	ErrSymlink = errors.New("reached through a symbolic link")
	// ErrMountFlag: a mount flag outside the allow-list.
	ErrMountFlag = errors.New("not an allowed mount flag")
)

// systemRoots are trees no volume may ever be mounted in or bind-mounted
// from: mounting over /proc/<pid> or a /sys attribute breaks the host (and
// this plugin, which reads /proc/self/mountinfo), and /dev nodes are the
// devices themselves.
var systemRoots = []string{"/proc", "/sys", "/dev"}

// Error is a refused path, flag or id. Field is the request field
// ("staging_target_path"), Value what it held, Root the kubelet root when
// the root mattered.
type Error struct {
	Field  string
	Value  string
	Root   string
	Reason error  // one of the Err* sentinels
	Detail string // what exactly, for the message
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s is %s", e.Field, Quote(e.Value), e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the sentinel, so errors.Is(err, ErrOutsideRoot) works.
func (e *Error) Unwrap() error { return e.Reason }

// quoteLimit is how much of a value a message repeats: enough for any
// kubelet path (under 200 bytes), short enough that a 10 KB hostile path
// does not become a 10 KB log line.
const quoteLimit = 256

// Quote renders a request value for a message: Go-quoted, so control
// characters show as escapes, and cut to quoteLimit bytes with the full
// length noted.
func Quote(v string) string {
	if len(v) <= quoteLimit {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:quoteLimit], len(v))
}

// CheckID refuses an empty id, one over MaxIDBytes and one holding a
// control character (which would end up in logs and messages raw).
func CheckID(field, id string) error {
	switch {
	case id == "":
		return &Error{Field: field, Value: id, Reason: ErrMalformed, Detail: "it is required"}
	case len(id) > MaxIDBytes:
		return &Error{Field: field, Value: id, Reason: ErrTooLong, Detail: fmt.Sprintf("%d bytes, at most %d are allowed", len(id), MaxIDBytes)}
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return &Error{Field: field, Value: id, Reason: ErrMalformed, Detail: "it contains a control character"}
		}
	}
	return nil
}

// CheckShape validates a path without touching the file system: absolute,
// no NUL, no "..", within PATH_MAX and NAME_MAX, not under /proc, /sys or
// /dev. It returns the cleaned path.
func CheckShape(field, path string) (string, error) {
	fail := func(reason error, detail string, args ...any) (string, error) {
		return "", &Error{Field: field, Value: path, Reason: reason, Detail: fmt.Sprintf(detail, args...)}
	}
	switch {
	case path == "":
		return fail(ErrMalformed, "it is required")
	case len(path) >= MaxPathBytes:
		return fail(ErrTooLong, "%d bytes, PATH_MAX is %d", len(path), MaxPathBytes)
	case !strings.HasPrefix(path, "/"):
		return fail(ErrMalformed, "it must be an absolute path")
	case strings.ContainsRune(path, 0):
		return fail(ErrMalformed, "it contains a NUL byte")
	}
	for c := range strings.SplitSeq(path, "/") {
		if c == ".." {
			return fail(ErrMalformed, "it contains a \"..\" component")
		}
		if len(c) > MaxNameBytes {
			return fail(ErrTooLong, "a component is %d bytes, NAME_MAX is %d", len(c), MaxNameBytes)
		}
	}
	clean := filepath.Clean(path)
	if sys := systemRoot(clean); sys != "" {
		return fail(ErrSystemPath, "nothing under %s is ever a volume path", sys)
	}
	return clean, nil
}

// systemRoot returns the system tree holding clean, or "".
func systemRoot(clean string) string {
	for _, s := range systemRoots {
		if within(clean, s) {
			return s
		}
	}
	return ""
}

// within reports whether clean is dir or beneath it (both clean).
func within(clean, dir string) bool {
	if dir == "/" {
		return true
	}
	return clean == dir || strings.HasPrefix(clean, dir+"/")
}
