package manilanode

import (
	"path"
	"regexp"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
)

// Keys of the volume context the controller writes (docs/design.md,
// "Manila: controller and node"), of the publish context and of the stage
// secrets.
const (
	KeyShareID           = "shareID"
	KeyShareName         = "shareName"
	KeyProtocol          = "protocol"
	KeyExportLocation    = "exportLocation"
	KeyCephFSMounter     = "cephfs-mounter"
	KeyCephKernelOptions = "cephfs-kernelMountOptions"
	KeyCephFuseOptions   = "cephfs-fuseMountOptions"
	KeyCephClientID      = "cephfs-clientID"
	KeyFSName            = "fsName"
	KeyNFSMountOptions   = "nfs-mountOptions"
	KeyNFSVersion        = "nfsVersion"
	// KeyUserKey is the cephx key in the stage secrets (first) or the
	// publish context (second). KeyUserID is the cephx identity in the
	// stage secrets.
	KeyUserKey = "userKey"
	KeyUserID  = "userID"
)

// Protocols and CephFS mounters.
const (
	ProtocolNFS    = "NFS"
	ProtocolCephFS = "CEPHFS"
	MounterFuse    = "fuse"
	MounterKernel  = "kernel"
)

// defaultNFSVersion is what a share mounts with when nothing asks for
// another: 4.1 has sessions (exactly-once semantics), which 4.0 lacks, and
// every NFS backend Manila supports serves it.
const defaultNFSVersion = "4.1"

// nfsVersions maps an accepted version to the filesystem type mount(8)
// needs for it.
var nfsVersions = map[string]string{"3": "nfs", "4": "nfs4", "4.0": "nfs4", "4.1": "nfs4", "4.2": "nfs4"}

// Export is a parsed export location: NFS "server:/path" (one server), or
// CephFS "mon1:6789,mon2:6789:/path" (the monitors).
type Export struct {
	Servers []string
	Path    string
}

// String is the location as Manila wrote it.
func (e Export) String() string { return strings.Join(e.Servers, ",") + ":" + e.Path }

// ShareSpec is everything the node needs to mount one share, parsed once
// from the volume context, publish context, stage secrets and volume
// capability. It never holds the cephx key.
type ShareSpec struct {
	VolumeID string
	ShareID  string
	Protocol string
	Export   Export
	// NFSVersion is set for NFS ("4.1" by default).
	NFSVersion string
	// Mounter is MounterFuse or MounterKernel for CephFS, "" for NFS.
	Mounter  string
	ClientID string
	FSName   string
	// Options are the validated mount options of the protocol and
	// mounter, without vers= (NFS) or the identity (CephFS).
	Options []string
}

const (
	// maxIDLength is the CSI spec's and issue 16's bound for ids.
	maxIDLength = hostpath.MaxIDBytes
	// maxPathLength is PATH_MAX.
	maxPathLength = hostpath.MaxPathBytes
	// maxExportLength bounds an export location; Manila's are ~100 bytes.
	maxExportLength = 1024
)

// uuidPattern is a Manila share id (a UUID).
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// hostPattern is a server or monitor: a DNS name, an IPv4 address or a
// bracketed IPv6 address, with an optional port.
var hostPattern = regexp.MustCompile(`^([A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$`)

// validateVolumeID refuses ids the node could not have made: the id names
// the node's state files, so it is a bounded token without '/' or "..".
// A dynamically provisioned volume's id is the share id; a static PV may
// choose another handle, with the share id in its volume context.
func validateVolumeID(id string) error {
	if id == "" {
		return errInvalid("volume_id is required")
	}
	if len(id) > maxIDLength {
		return errInvalid("volume_id is %d bytes long; at most %d are allowed", len(id), maxIDLength)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return errInvalid("volume_id %q has characters a Manila share id or PV handle cannot have", id)
		}
	}
	if strings.Trim(id, ".") == "" {
		return errInvalid("volume_id %q is not a volume id", id)
	}
	return nil
}

// validatePathField checks that a request path is present, absolute and
// bounded. Where it resolves is checked later, under the kubelet root.
func validatePathField(field, p string) error {
	if p == "" {
		return errInvalid("%s is required", field)
	}
	if len(p) > maxPathLength {
		return errInvalid("%s is %d bytes long; at most %d (PATH_MAX) are allowed", field, len(p), maxPathLength)
	}
	if !strings.HasPrefix(p, "/") {
		return errInvalid("%s %q must be an absolute path", field, p)
	}
	if strings.ContainsRune(p, 0) {
		return errInvalid("%s contains a NUL byte", field)
	}
	return nil
}

// validateCapability accepts mount access with any access mode; a share
// is a filesystem, never a block device.
func validateCapability(vc *csi.VolumeCapability) error {
	if vc == nil {
		return errInvalid("volume_capability is required")
	}
	if vc.GetAccessMode() == nil || vc.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_UNKNOWN {
		return errInvalid("volume_capability.access_mode is required")
	}
	if vc.GetBlock() != nil {
		return errInvalid("volume_capability asks for block access; a Manila share is a filesystem")
	}
	if vc.GetMount() == nil {
		return errInvalid("volume_capability needs access_type mount")
	}
	if fs := vc.GetMount().GetFsType(); fs != "" && fs != "nfs" && fs != "nfs4" && fs != "ceph" && fs != "cephfs" {
		return errInvalid("volume_capability.mount.fs_type %q is not a shared filesystem (leave it empty)", fs)
	}
	return nil
}

// parseExport splits an export location at its first ":/".
func parseExport(protocol, location string) (Export, error) {
	if location == "" {
		return Export{}, errInvalid("the volume has no export location: neither volume_context nor publish_context has %q", KeyExportLocation)
	}
	if len(location) > maxExportLength {
		return Export{}, errInvalid("export location is %d bytes long; at most %d are allowed", len(location), maxExportLength)
	}
	hosts, p, ok := strings.Cut(location, ":/")
	if !ok || hosts == "" {
		return Export{}, errInvalid("export location %q is not server:/path", location)
	}
	p = "/" + p
	if path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return Export{}, errInvalid("export location %q has a path that is not clean", location)
	}
	servers := strings.Split(hosts, ",")
	if protocol == ProtocolNFS && len(servers) != 1 {
		return Export{}, errInvalid("NFS export location %q names %d servers; it names one", location, len(servers))
	}
	for _, s := range servers {
		if !hostPattern.MatchString(s) {
			return Export{}, errInvalid("export location %q has a server %q that is not a host name or address", location, s)
		}
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f || r == ',' {
			return Export{}, errInvalid("export location %q has a control character or comma in its path", location)
		}
	}
	return Export{Servers: servers, Path: p}, nil
}
