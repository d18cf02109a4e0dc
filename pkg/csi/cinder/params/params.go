// Package params parses StorageClass and VolumeSnapshotClass parameters
// once, into typed structs with defaults, so handlers never read the raw
// map. Keys are those of the reference Cinder CSI plugin, so existing
// classes keep working; a key nobody reads is rejected, because a typo
// (`availabilty`) silently ignored is a volume in the wrong zone.
package params

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/csi/paramkit"
)

// Keys read from StorageClass parameters.
const (
	KeyType         = "type"
	KeyAvailability = "availability"
	// KeyKataDirectVolume lets a class opt out of (or into) Kata direct
	// volumes. The controller validates it and passes it through the
	// volume context to the node, which decides.
	KeyKataDirectVolume = "kataDirectVolume"
	// KeyLegacyFSType is the pre-CSI spelling; the provisioner turns it
	// into the capability's fs_type and may still pass it on.
	KeyLegacyFSType = "fsType"
)

// Keys injected by the sidecars. Everything under SidecarPrefix belongs to
// them (secret references, --extra-create-metadata), so unknown keys there
// are tolerated rather than rejected.
const (
	SidecarPrefix = "csi.storage.k8s.io/"

	KeyPVCName      = "csi.storage.k8s.io/pvc/name"
	KeyPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	KeyPVName       = "csi.storage.k8s.io/pv/name"
	KeyFSType       = "csi.storage.k8s.io/fstype"

	KeySnapshotName        = "csi.storage.k8s.io/volumesnapshot/name"
	KeySnapshotNamespace   = "csi.storage.k8s.io/volumesnapshot/namespace"
	KeySnapshotContentName = "csi.storage.k8s.io/volumesnapshotcontent/name"
)

// Keys read from VolumeSnapshotClass parameters.
const (
	KeySnapshotType         = "type"
	KeyForceCreate          = "force-create"
	KeyBackupSecondsPerGiB  = "backup-max-duration-seconds-per-gb"
	KeySnapshotAvailability = "availability"
	SnapshotTypeSnapshot    = "snapshot"
	SnapshotTypeBackup      = "backup"
	defaultBackupSecsPerGiB = 20 // the reference plugin's default
	maxBackupSecondsPerGiB  = 24 * 3600
)

// VolumeAttributesClass keys (CreateVolume's mutable_parameters and
// ControllerModifyVolume).
const (
	// KeyType (above) is the volume type to retype to.
	KeyMigrationPolicy = "migration-policy"

	MigrationNever    = "never"
	MigrationOnDemand = "on-demand"
)

// Error is an invalid parameter. The CSI layer answers InvalidArgument.
type Error = paramkit.Error

// IsInvalid reports whether err is (or wraps) a parameter *Error.
func IsInvalid(err error) bool { return paramkit.IsInvalid(err) }

// Volume is a parsed StorageClass (CreateVolume / GetCapacity) parameter set.
type Volume struct {
	// VolumeType is the Cinder volume type, name or ID ("" = Cinder default).
	VolumeType string
	// Availability is the Cinder AZ; when set it wins over topology.
	Availability string
	// KataDirectVolume is the raw, validated opt-in value ("" when unset),
	// passed through to the node in the volume context.
	KataDirectVolume string
	// PVC and PV identity from the provisioner's --extra-create-metadata.
	PVCName      string
	PVCNamespace string
	PVName       string
}

// Snapshot is a parsed VolumeSnapshotClass parameter set.
type Snapshot struct {
	// Backup is true for type=backup: the "snapshot" is a Cinder backup.
	Backup bool
	// Force allows a snapshot or backup of an in-use volume.
	Force bool
	// BackupMaxDuration is how long a backup may take per GiB of source
	// before CreateSnapshot reports it as stuck.
	BackupMaxDurationPerGiB time.Duration
	// Availability is the AZ of the backup ("" = the backup service's).
	Availability string
	// VolumeSnapshot identity from the snapshotter's --extra-create-metadata.
	SnapshotName        string
	SnapshotNamespace   string
	SnapshotContentName string
}

// Mutable is a parsed VolumeAttributesClass parameter set.
type Mutable struct {
	// VolumeType is the Cinder volume type, name or ID.
	VolumeType string
	// MigrationPolicy is Cinder's retype migration_policy: "never" (the
	// default: the volume stays on its backend, and a type that needs
	// another backend is refused) or "on-demand" (Cinder may move the data).
	MigrationPolicy string
}

// ParseMutable parses VolumeAttributesClass parameters. "type" is required:
// it is the only attribute of a Cinder volume the driver changes.
func ParseMutable(in map[string]string) (*Mutable, error) {
	m := &Mutable{MigrationPolicy: MigrationNever}
	var errs []error
	for _, key := range sortedKeys(in) {
		value := strings.TrimSpace(in[key])
		switch key {
		case KeyType:
			if value == "" {
				errs = append(errs, &Error{Key: key, Reason: "must name a volume type"})
			}
			m.VolumeType = value
		case KeyMigrationPolicy:
			if value != MigrationNever && value != MigrationOnDemand {
				errs = append(errs, &Error{Key: key, Value: value, Reason: "must be never or on-demand"})
			}
			m.MigrationPolicy = value
		default:
			errs = append(errs, &Error{Key: key, Reason: "unknown parameter; a VolumeAttributesClass may set type and migration-policy"})
		}
	}
	if _, ok := in[KeyType]; !ok && len(errs) == 0 {
		errs = append(errs, &Error{Key: KeyType, Reason: "is required: the volume type is what a VolumeAttributesClass changes"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseVolume parses StorageClass parameters.
func ParseVolume(in map[string]string) (*Volume, error) {
	v := &Volume{}
	var errs []error
	for _, key := range sortedKeys(in) {
		value := in[key]
		switch key {
		case KeyType:
			v.VolumeType = strings.TrimSpace(value)
		case KeyAvailability:
			v.Availability = strings.TrimSpace(value)
		case KeyKataDirectVolume:
			if _, err := strconv.ParseBool(value); err != nil {
				errs = append(errs, &Error{Key: key, Value: value, Reason: "must be true or false"})
				continue
			}
			v.KataDirectVolume = value
		case KeyPVCName:
			v.PVCName = value
		case KeyPVCNamespace:
			v.PVCNamespace = value
		case KeyPVName:
			v.PVName = value
		default:
			if err := tolerated(key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseSnapshot parses VolumeSnapshotClass parameters.
func ParseSnapshot(in map[string]string) (*Snapshot, error) {
	s := &Snapshot{BackupMaxDurationPerGiB: defaultBackupSecsPerGiB * time.Second}
	var errs []error
	for _, key := range sortedKeys(in) {
		value := in[key]
		switch key {
		case KeySnapshotType:
			switch strings.ToLower(strings.TrimSpace(value)) {
			case "", SnapshotTypeSnapshot:
			case SnapshotTypeBackup:
				s.Backup = true
			default:
				errs = append(errs, &Error{Key: key, Value: value, Reason: `must be "snapshot" or "backup"`})
			}
		case KeyForceCreate:
			b, err := strconv.ParseBool(strings.TrimSpace(value))
			if err != nil {
				errs = append(errs, &Error{Key: key, Value: value, Reason: "must be true or false"})
				continue
			}
			s.Force = b
		case KeyBackupSecondsPerGiB:
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n <= 0 || n > maxBackupSecondsPerGiB {
				errs = append(errs, &Error{Key: key, Value: value, Reason: fmt.Sprintf("must be a whole number of seconds between 1 and %d", maxBackupSecondsPerGiB)})
				continue
			}
			s.BackupMaxDurationPerGiB = time.Duration(n) * time.Second
		case KeySnapshotAvailability:
			s.Availability = strings.TrimSpace(value)
		case KeySnapshotName:
			s.SnapshotName = value
		case KeySnapshotNamespace:
			s.SnapshotNamespace = value
		case KeySnapshotContentName:
			s.SnapshotContentName = value
		default:
			if err := tolerated(key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !s.Backup {
		// availability and the duration only mean something for backups;
		// accepting them silently on snapshots matches the reference plugin.
		s.Availability = ""
	}
	return s, nil
}

// tolerated returns nil for keys we accept without reading them.
func tolerated(key string) error {
	switch {
	case strings.HasPrefix(key, SidecarPrefix):
		// Secret references and extra metadata from the sidecars.
		return nil
	case strings.EqualFold(key, KeyLegacyFSType):
		// Consumed by the provisioner; it arrives as the capability fs_type.
		return nil
	}
	return &Error{Key: key, Reason: "unknown parameter"}
}

func sortedKeys(m map[string]string) []string { return paramkit.SortedKeys(m) }
