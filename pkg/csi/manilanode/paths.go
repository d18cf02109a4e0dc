package manilanode

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// resolvePath checks that a staging or target path lies under the kubelet
// root without a symlink or ".." on the way, and returns it clean. A
// component that does not exist yet ends the walk: the node creates it.
func (ns *NodeServer) resolvePath(field, p string) (string, error) {
	if err := validatePathField(field, p); err != nil {
		return "", err
	}
	root := ns.root
	clean := filepath.Clean(p)
	if clean != strings.TrimSuffix(p, "/") && p != "/" {
		return "", errInvalid("%s %q has \".\" or \"..\" components or repeated slashes; it must be a clean path under the kubelet root %s", field, p, root)
	}
	for _, forbidden := range []string{"/proc", "/sys", "/dev"} {
		if clean == forbidden || strings.HasPrefix(clean, forbidden+"/") {
			return "", errInvalid("%s %q is under %s, which is never a mount target", field, p, forbidden)
		}
	}
	rel, err := filepath.Rel(root, clean)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errInvalid("%s %q is not under the kubelet root %s", field, p, root)
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			if isBroken(cur) {
				// A dead FUSE mount on the way is still ours to clean up.
				break
			}
			return "", statusFromError(err, "checking %s %q", field, p)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "", errInvalid("%s %q passes through the symlink %s; paths under the kubelet root %s are used without following symlinks", field, p, cur, root)
		}
	}
	return clean, nil
}
