// Package params parses the Manila driver's StorageClass and
// VolumeSnapshotClass parameters and volume contexts once, into typed
// structs with defaults, so handlers never read the raw maps. Keys are the
// reference Manila CSI plugin's, so existing classes and static PVs keep
// working; a key nobody reads is rejected, because a typo silently ignored
// is a share with the wrong access.
package params

import (
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/cinder-csi/cinder-csi/pkg/csi/paramkit"
)

// Protocols the driver serves.
const (
	ProtocolNFS    = "NFS"
	ProtocolCephFS = "CEPHFS"
)

// CephFS mounters.
const (
	MounterFuse   = "fuse"
	MounterKernel = "kernel"
)

// StorageClass keys. All but KeyProtocol, KeyNFSMountOptions and
// KeyNFSVersion are the reference plugin's.
const (
	KeyType                   = "type"
	KeyProtocol               = "protocol"
	KeyShareNetworkID         = "shareNetworkID"
	KeyAvailability           = "availability"
	KeyAutoTopology           = "autoTopology"
	KeyAppendShareMetadata    = "appendShareMetadata"
	KeyGroupID                = "groupID"
	KeyCephfsMounter          = "cephfs-mounter"
	KeyCephfsClientID         = "cephfs-clientID"
	KeyCephfsKernelMountOpts  = "cephfs-kernelMountOptions"
	KeyCephfsFuseMountOpts    = "cephfs-fuseMountOptions"
	KeyNFSShareClient         = "nfs-shareClient"
	KeyNFSMountOptions        = "nfs-mountOptions"
	KeyNFSVersion             = "nfsVersion"
	maxAppendedMetadataLength = 255 // Manila's limit on a metadata key
)

// Keys injected by the sidecars. Everything under SidecarPrefix belongs to
// them (secret references, --extra-create-metadata), so unknown keys there
// are tolerated rather than rejected.
const (
	SidecarPrefix = "csi.storage.k8s.io/"
	// ProvisionerIdentityKey is the attribute csi-provisioner adds to
	// every PV it provisions (which provisioner instance made it); the
	// attacher then passes it in ControllerPublishVolume's volume context.
	ProvisionerIdentityKey = "storage.kubernetes.io/csiProvisionerIdentity"

	KeyPVCName                  = "csi.storage.k8s.io/pvc/name"
	KeyPVCNamespace             = "csi.storage.k8s.io/pvc/namespace"
	KeyPVName                   = "csi.storage.k8s.io/pv/name"
	KeyNodeStageSecretNamespace = "csi.storage.k8s.io/node-stage-secret-namespace"
	KeySnapshotName             = "csi.storage.k8s.io/volumesnapshot/name"
	KeySnapshotNamespace        = "csi.storage.k8s.io/volumesnapshot/namespace"
	KeySnapshotContentName      = "csi.storage.k8s.io/volumesnapshotcontent/name"
	KeyLegacyFSType             = "fsType"
	KeyFSType                   = "csi.storage.k8s.io/fstype"
)

// Error is an invalid parameter. The CSI layer answers InvalidArgument.
type Error = paramkit.Error

// IsInvalid reports whether err is (or wraps) a parameter *Error.
func IsInvalid(err error) bool { return paramkit.IsInvalid(err) }

// CephFS holds the CephFS mount settings passed to the node.
type CephFS struct {
	Mounter            string // fuse (default) or kernel
	ClientID           string // cephx identity; "" = derived from the share
	KernelMountOptions string
	FuseMountOptions   string
}

// NFS holds the NFS settings.
type NFS struct {
	// ShareClients are the CIDRs or addresses given by nfs-shareClient:
	// rules for them are made at CreateVolume (the reference's model) and
	// ControllerPublishVolume adds no per-node rules.
	ShareClients []string
	MountOptions string
	Version      string
}

// Volume is a parsed StorageClass parameter set.
type Volume struct {
	ShareType      string
	Protocol       string // "" = the driver's --share-protocol-selector
	ShareNetworkID string
	Availability   string
	AutoTopology   bool
	GroupID        string
	// AppendMetadata is appendShareMetadata, written on the share.
	AppendMetadata map[string]string
	CephFS         CephFS
	NFS            NFS
	// Kubernetes identity from the provisioner's --extra-create-metadata.
	PVCName      string
	PVCNamespace string
	PVName       string
	// SecretNamespace is where a cephx Secret is written when the class
	// names one ("" = the controller's namespace).
	SecretNamespace string
}

// ParseVolume parses StorageClass parameters (CreateVolume, GetCapacity).
func ParseVolume(in map[string]string) (*Volume, error) {
	v := &Volume{CephFS: CephFS{Mounter: MounterFuse}}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, key := range sortedKeys(in) {
		value := strings.TrimSpace(in[key])
		switch key {
		case KeyType:
			v.ShareType = value
		case KeyProtocol:
			p, err := ParseProtocol(key, value)
			add(err)
			v.Protocol = p
		case KeyShareNetworkID:
			v.ShareNetworkID = value
		case KeyAvailability:
			v.Availability = value
		case KeyAutoTopology:
			b, err := strconv.ParseBool(value)
			if err != nil {
				add(&Error{Key: key, Value: value, Reason: "must be true or false"})
			}
			v.AutoTopology = b
		case KeyGroupID:
			v.GroupID = value
		case KeyAppendShareMetadata:
			m, err := parseMetadata(key, value)
			add(err)
			v.AppendMetadata = m
		case KeyPVCName:
			v.PVCName = value
		case KeyPVCNamespace:
			v.PVCNamespace = value
		case KeyPVName:
			v.PVName = value
		case KeyNodeStageSecretNamespace:
			v.SecretNamespace = value
		case KeyLegacyFSType:
			// The pre-CSI spelling; the provisioner turns it into the
			// capability's fs_type, which the controller checks.
		default:
			if ok, err := parseMountSetting(key, value, &v.CephFS, &v.NFS); ok {
				add(err)
			} else {
				add(tolerated(key))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

// parseMountSetting reads a CephFS or NFS mount key into c or n; the keys
// are the same in a StorageClass and a volume context. It returns false
// for a key that is not one of them.
func parseMountSetting(key, value string, c *CephFS, n *NFS) (bool, error) {
	var err error
	switch key {
	case KeyCephfsMounter:
		if value != MounterFuse && value != MounterKernel {
			err = &Error{Key: key, Value: value, Reason: "must be fuse or kernel"}
		}
		c.Mounter = value
	case KeyCephfsClientID:
		err = checkClientID(key, value)
		c.ClientID = value
	case KeyCephfsKernelMountOpts:
		c.KernelMountOptions = value
	case KeyCephfsFuseMountOpts:
		c.FuseMountOptions = value
	case KeyNFSShareClient:
		n.ShareClients, err = parseShareClients(key, value)
	case KeyNFSMountOptions:
		n.MountOptions = value
	case KeyNFSVersion:
		err = checkNFSVersion(key, value)
		n.Version = value
	default:
		return false, nil
	}
	return true, err
}

// Snapshot is a parsed VolumeSnapshotClass parameter set. Manila snapshots
// take no options; only the snapshotter's own keys are accepted.
type Snapshot struct {
	SnapshotName        string
	SnapshotNamespace   string
	SnapshotContentName string
}

// ParseSnapshot parses VolumeSnapshotClass parameters.
func ParseSnapshot(in map[string]string) (*Snapshot, error) {
	s := &Snapshot{}
	var errs []error
	for _, key := range sortedKeys(in) {
		switch key {
		case KeySnapshotName:
			s.SnapshotName = in[key]
		case KeySnapshotNamespace:
			s.SnapshotNamespace = in[key]
		case KeySnapshotContentName:
			s.SnapshotContentName = in[key]
		default:
			if !strings.HasPrefix(key, SidecarPrefix) {
				errs = append(errs, &Error{Key: key, Reason: "unknown parameter; a Manila VolumeSnapshotClass takes no parameters of its own"})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseProtocol accepts NFS and CEPHFS in any letter case.
func ParseProtocol(key, value string) (string, error) {
	switch strings.ToUpper(value) {
	case ProtocolNFS:
		return ProtocolNFS, nil
	case ProtocolCephFS:
		return ProtocolCephFS, nil
	}
	return "", &Error{Key: key, Value: value, Reason: "must be NFS or CEPHFS"}
}

func parseMetadata(key, value string) (map[string]string, error) {
	if value == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(value), &m); err != nil {
		return nil, &Error{Key: key, Value: value, Reason: "must be a JSON object of string values, e.g. {\"team\":\"storage\"}"}
	}
	for k, val := range m {
		if k == "" || len(k) > maxAppendedMetadataLength {
			return nil, &Error{Key: key, Value: k, Reason: "metadata keys must be 1 to 255 characters"}
		}
		if len(val) > 1023 {
			return nil, &Error{Key: key, Value: k, Reason: "metadata values must be at most 1023 characters"}
		}
	}
	return m, nil
}

// parseShareClients splits a comma list of addresses or CIDRs, which
// Manila's ip access rules accept.
func parseShareClients(key, value string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if net.ParseIP(part) == nil {
			if _, _, err := net.ParseCIDR(part); err != nil {
				return nil, &Error{Key: key, Value: part, Reason: "must be a comma list of IP addresses or CIDRs"}
			}
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return nil, &Error{Key: key, Value: value, Reason: "names no address or CIDR"}
	}
	return out, nil
}

// checkClientID: a cephx user name is letters, digits and ._- (Ceph takes
// more, but such names end up in file names on the node).
func checkClientID(key, value string) error {
	if value == "" || len(value) > 128 {
		return &Error{Key: key, Value: value, Reason: "must be 1 to 128 characters"}
	}
	for _, r := range value {
		if !isNameRune(r) {
			return &Error{Key: key, Value: value, Reason: "may hold only letters, digits, '.', '-' and '_'"}
		}
	}
	return nil
}

func checkNFSVersion(key, value string) error {
	switch value {
	case "3", "4", "4.0", "4.1", "4.2":
		return nil
	}
	return &Error{Key: key, Value: value, Reason: "must be 3, 4, 4.0, 4.1 or 4.2"}
}

// tolerated accepts the sidecars' keys and rejects anything else.
func tolerated(key string) error {
	if strings.HasPrefix(key, SidecarPrefix) {
		return nil
	}
	return &Error{Key: key, Reason: "unknown parameter; see docs/compatibility.md for the StorageClass keys the Manila driver reads"}
}

func sortedKeys(m map[string]string) []string { return paramkit.SortedKeys(m) }

// isNameRune reports whether r may appear in a name: an ASCII letter or
// digit, '.', '-' or '_'.
func isNameRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_'
}
