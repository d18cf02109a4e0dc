package hostpath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is the kubelet root directory, the only tree a node RPC's staging
// and target paths may name.
type Root struct {
	dir   string // absolute, clean, symlinks resolved
	given string // as configured, cleaned; kubelet sends paths under it
}

// NewRoot returns the Root for dir. The directory must exist; symlinks in
// dir itself are resolved once here (an operator may keep kubelet's root on
// another disk behind a link). A root under /proc, /sys or /dev, or "/",
// is refused: it would make the check meaningless.
func NewRoot(dir string) (*Root, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("kubelet root %q must be an absolute path", dir)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("kubelet root %q: %w", dir, err)
	}
	st, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("kubelet root %q: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("kubelet root %q is not a directory", dir)
	}
	if resolved == "/" {
		return nil, fmt.Errorf("kubelet root %q resolves to /, which would allow every host path", dir)
	}
	if sys := systemRoot(resolved); sys != "" {
		return nil, fmt.Errorf("kubelet root %q resolves to %s, under %s", dir, resolved, sys)
	}
	return &Root{dir: resolved, given: filepath.Clean(dir)}, nil
}

// Dir returns the root directory (symlinks resolved).
func (r *Root) Dir() string { return r.dir }

// Resolve checks a staging or target path from a request and returns it
// cleaned, under the resolved root (a path under the root as configured,
// when that is a symlink, is rewritten). It passes CheckShape, lies
// strictly beneath the root, and no
// existing component of it below the root is a symlink; the part that does
// not exist yet (a target kubelet has not created, a staging directory
// NodeStage creates) can hold none. The last component may be a mount
// point whose filesystem is unreachable (EIO, ENOTCONN): its parent is
// checked instead, so a stale mount can still be unmounted.
//
// The answer holds for the moment of the call: the tree under the kubelet
// root is written by kubelet and this plugin only, both root, so no
// unprivileged party can swap a component for a symlink afterwards.
func (r *Root) Resolve(field, path string) (string, error) {
	clean, err := CheckShape(field, path)
	if err != nil {
		return "", err
	}
	if r.given != r.dir && within(clean, r.given) {
		clean = r.dir + strings.TrimPrefix(clean, r.given)
	}
	if !within(clean, r.dir) || clean == r.dir {
		return "", &Error{Field: field, Value: path, Root: r.dir, Reason: ErrOutsideRoot,
			Detail: fmt.Sprintf("it must name an entry beneath the kubelet root %s", r.dir)}
	}
	rel := strings.TrimPrefix(clean, r.dir+"/")
	if err := r.checkBeneath(rel); err != nil {
		var he *Error
		if errors.As(err, &he) {
			he.Field, he.Value, he.Root = field, path, r.dir
			return "", he
		}
		return "", fmt.Errorf("%s %s: %w", field, Quote(path), err)
	}
	return clean, nil
}

// checkBeneath opens the longest existing prefix of rel beneath the root
// and refuses a symlink or an escape on the way.
func (r *Root) checkBeneath(rel string) error {
	rootFD, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the kubelet root %s: %w", r.dir, err)
	}
	defer unix.Close(rootFD)
	for p := rel; p != "." && p != "/" && p != ""; p = filepath.Dir(p) {
		err := openBeneath(rootFD, r.dir, p)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.ELOOP):
			return &Error{Reason: ErrSymlink, Detail: fmt.Sprintf("%s/%s or a directory above it is a symlink; kubelet never makes one", r.dir, p)}
		case errors.Is(err, unix.EXDEV):
			return &Error{Reason: ErrOutsideRoot, Detail: fmt.Sprintf("resolving it leaves the kubelet root %s", r.dir)}
		}
		// ENOENT, ENOTDIR, or an unreachable filesystem mounted at p:
		// the parent decides. What does not exist cannot be a link.
	}
	return nil
}

// openBeneath opens rel beneath rootFD with openat2, refusing symlinks and
// escapes; without openat2 it walks rel with lstat.
func openBeneath(rootFD int, rootDir, rel string) error {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootFD, rel, how)
		if err == nil {
			return unix.Close(fd)
		}
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			// EAGAIN: a concurrent rename raced the lookup; try again.
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			// ENOSYS: no openat2. O_PATH needs no permission, so EPERM
			// is a seccomp filter refusing the call itself.
			return lstatWalk(rootDir, rel)
		}
		return err
	}
}

// lstatWalk is openat2's fallback: each component, from the root down,
// must not be a symlink. It returns ELOOP for a symlink and the lstat
// error for a missing component.
func lstatWalk(rootDir, rel string) error {
	cur := rootDir
	for c := range strings.SplitSeq(rel, "/") {
		cur = filepath.Join(cur, c)
		st, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return unix.ELOOP
		}
	}
	return nil
}
