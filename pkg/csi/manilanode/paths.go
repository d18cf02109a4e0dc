package manilanode

import (
	"errors"

	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// resolvePath checks that a staging or target path lies beneath the
// kubelet root, reached without a symlink or "..", and never under /proc,
// /sys or /dev (pkg/hostpath, shared with the Cinder node), and returns it
// clean. Refusals are InvalidArgument naming the path and the root.
func (ns *NodeServer) resolvePath(field, p string) (string, error) {
	if err := validatePathField(field, p); err != nil {
		return "", err
	}
	clean, err := ns.root.Resolve(field, p)
	if err != nil {
		var he *hostpath.Error
		if errors.As(err, &he) {
			return "", errInvalid("%s", he.Error())
		}
		return "", statusFromError(err, "checking %s", field)
	}
	return clean, nil
}

// volumePath checks a request's volume id, then resolves its staging or
// target path (field) as resolvePath does: the opening of every stage and
// publish handler.
func (ns *NodeServer) volumePath(volumeID, field, p string) (string, error) {
	if err := validateVolumeID(volumeID); err != nil {
		return "", err
	}
	return ns.resolvePath(field, p)
}
