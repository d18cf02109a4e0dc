package params

import (
	"errors"
	"strings"
)

// VolumeGroupSnapshotClass parameter keys.
const (
	// KeyGroupType names the Cinder group type (name or id) of the group
	// the driver puts the source volumes in to snapshot them together.
	KeyGroupType = "group-type"

	KeyGroupSnapshotName        = "csi.storage.k8s.io/volumegroupsnapshot/name"
	KeyGroupSnapshotNamespace   = "csi.storage.k8s.io/volumegroupsnapshot/namespace"
	KeyGroupSnapshotContentName = "csi.storage.k8s.io/volumegroupsnapshotcontent/name"
)

// GroupSnapshot is a parsed VolumeGroupSnapshotClass parameter set. There
// is no force flag: Cinder snapshots in-use members of a group without one.
type GroupSnapshot struct {
	GroupType string
	// VolumeGroupSnapshot identity from the snapshotter's
	// --extra-create-metadata.
	Name        string
	Namespace   string
	ContentName string
}

// ParseGroupSnapshot parses VolumeGroupSnapshotClass parameters.
// group-type is required: Cinder has no default group type that works on
// every backend (Zed's default_cgsnapshot_type needs a driver with
// consistency groups, which RBD is not).
func ParseGroupSnapshot(in map[string]string) (*GroupSnapshot, error) {
	g := &GroupSnapshot{}
	var errs []error
	for _, key := range sortedKeys(in) {
		value := in[key]
		switch key {
		case KeyGroupType:
			g.GroupType = strings.TrimSpace(value)
			if g.GroupType == "" {
				errs = append(errs, &Error{Key: key, Reason: "must name a Cinder group type"})
			}
		case KeyGroupSnapshotName:
			g.Name = value
		case KeyGroupSnapshotNamespace:
			g.Namespace = value
		case KeyGroupSnapshotContentName:
			g.ContentName = value
		default:
			if err := tolerated(key); err != nil {
				errs = append(errs, &Error{Key: key, Reason: "unknown parameter; a VolumeGroupSnapshotClass sets group-type"})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, set := in[KeyGroupType]; !set {
		return nil, &Error{Key: KeyGroupType, Reason: "is required: the Cinder group type whose groups hold the source volumes (one with consistent_group_snapshot_enabled for crash-consistent snapshots)"}
	}
	return g, nil
}
