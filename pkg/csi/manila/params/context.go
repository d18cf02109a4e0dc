package params

import (
	"errors"
	"strings"
)

// Volume context keys: what CreateVolume returns and the node reads, and
// the attributes of a static PV (the reference's shareID, shareName,
// shareAccessIDs, and its deprecated shareAccessID).
const (
	CtxShareID          = "shareID"
	CtxShareName        = "shareName"
	CtxShareAccessIDs   = "shareAccessIDs"
	CtxShareAccessID    = "shareAccessID" // deprecated in the reference
	CtxProtocol         = "protocol"
	CtxExportLocation   = "exportLocation"
	CtxFSName           = "fsName"
	CtxCephfsMounter    = KeyCephfsMounter
	CtxCephfsClientID   = KeyCephfsClientID
	CtxCephfsKernelOpts = KeyCephfsKernelMountOpts
	CtxCephfsFuseOpts   = KeyCephfsFuseMountOpts
	CtxNFSShareClient   = KeyNFSShareClient
	CtxNFSMountOptions  = KeyNFSMountOptions
	CtxNFSVersion       = KeyNFSVersion
)

// Publish context keys (ControllerPublishVolume → NodeStageVolume).
const (
	PubExportLocation = "exportLocation"
	PubCephfsClientID = "cephfs-clientID"
	// PubUserKey carries the cephx key only with
	// --cephx-key-delivery=publish-context.
	PubUserKey = "userKey"
)

// VolumeContext is a parsed volume context: one CreateVolume returned, or
// a static PV's attributes.
type VolumeContext struct {
	ShareID        string
	ShareName      string
	ShareAccessIDs []string
	Protocol       string // "" when a static PV leaves it out
	ExportLocation string
	FSName         string
	CephFS         CephFS
	NFS            NFS
}

// ParseVolumeContext parses a volume context. Keys under the sidecars'
// prefix are tolerated (the kubelet adds pod information on the node), and
// so is csi-provisioner's identity, which every dynamically provisioned
// PV carries into ControllerPublishVolume (found by make e2e-k8s).
func ParseVolumeContext(in map[string]string) (*VolumeContext, error) {
	vc := &VolumeContext{CephFS: CephFS{Mounter: MounterFuse}}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, key := range sortedKeys(in) {
		value := strings.TrimSpace(in[key])
		switch key {
		case CtxShareID:
			vc.ShareID = value
		case CtxShareName:
			vc.ShareName = value
		case CtxShareAccessIDs, CtxShareAccessID:
			for _, id := range strings.Split(value, ",") {
				if id = strings.TrimSpace(id); id != "" {
					vc.ShareAccessIDs = append(vc.ShareAccessIDs, id)
				}
			}
		case CtxProtocol:
			p, err := ParseProtocol(key, value)
			add(err)
			vc.Protocol = p
		case CtxExportLocation:
			vc.ExportLocation = value
		case CtxFSName:
			vc.FSName = value
		default:
			if ok, err := parseMountSetting(key, value, &vc.CephFS, &vc.NFS); ok {
				add(err)
			} else if !strings.HasPrefix(key, SidecarPrefix) && key != ProvisionerIdentityKey {
				add(&Error{Key: key, Reason: "unknown volume attribute; see docs/compatibility.md for the attributes the Manila driver reads"})
			}
		}
	}
	if vc.ShareID != "" && vc.ShareName != "" {
		add(&Error{Key: CtxShareName, Value: vc.ShareName, Reason: "give shareID or shareName, not both"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return vc, nil
}

// Map renders a volume context the way CreateVolume returns it: only the
// keys that have values.
func (vc *VolumeContext) Map() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(CtxShareID, vc.ShareID)
	set(CtxShareName, vc.ShareName)
	set(CtxShareAccessIDs, strings.Join(vc.ShareAccessIDs, ","))
	set(CtxProtocol, vc.Protocol)
	set(CtxExportLocation, vc.ExportLocation)
	set(CtxFSName, vc.FSName)
	if vc.Protocol == ProtocolCephFS {
		set(CtxCephfsMounter, vc.CephFS.Mounter)
		set(CtxCephfsClientID, vc.CephFS.ClientID)
		set(CtxCephfsKernelOpts, vc.CephFS.KernelMountOptions)
		set(CtxCephfsFuseOpts, vc.CephFS.FuseMountOptions)
	}
	if vc.Protocol == ProtocolNFS {
		set(CtxNFSShareClient, strings.Join(vc.NFS.ShareClients, ","))
		set(CtxNFSMountOptions, vc.NFS.MountOptions)
		set(CtxNFSVersion, vc.NFS.Version)
	}
	return m
}
