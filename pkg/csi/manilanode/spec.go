package manilanode

import (
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// specInput is what NodeStageVolume is told about a share.
type specInput struct {
	volumeID        string
	capability      *csi.VolumeCapability
	volumeContext   map[string]string
	publishContext  map[string]string
	secrets         map[string]string
	defaultProtocol string
}

// contextValue reads key from the volume context, else the publish
// context: a static PV's context lacks what ControllerPublish fills in.
func (in specInput) contextValue(key string) string {
	if v := in.volumeContext[key]; v != "" {
		return v
	}
	return in.publishContext[key]
}

// parseShareSpec builds the ShareSpec of a stage request, answering
// InvalidArgument naming the first key that is wrong.
func parseShareSpec(in specInput) (*ShareSpec, error) {
	if err := validateCapability(in.capability); err != nil {
		return nil, err
	}
	spec := &ShareSpec{VolumeID: in.volumeID, ShareID: in.contextValue(KeyShareID)}
	if spec.ShareID == "" && uuidPattern.MatchString(in.volumeID) {
		spec.ShareID = in.volumeID // a dynamically provisioned volume: id = share id
	}
	if spec.ShareID != "" && !uuidPattern.MatchString(spec.ShareID) {
		return nil, errInvalid("volume_context[%q] = %q is not a Manila share id (a UUID)", KeyShareID, spec.ShareID)
	}
	spec.Protocol = strings.ToUpper(in.contextValue(KeyProtocol))
	if spec.Protocol == "" {
		spec.Protocol = strings.ToUpper(in.defaultProtocol)
	}
	switch spec.Protocol {
	case ProtocolNFS, ProtocolCephFS:
	case "":
		return nil, errInvalid("volume_context has no %q (NFS or CEPHFS) and the node has no --share-protocol-selector", KeyProtocol)
	default:
		return nil, errInvalid("volume_context[%q] = %q is not NFS or CEPHFS", KeyProtocol, spec.Protocol)
	}
	export, err := parseExport(spec.Protocol, in.contextValue(KeyExportLocation))
	if err != nil {
		return nil, err
	}
	spec.Export = export
	flags := in.capability.GetMount().GetMountFlags()
	if spec.Protocol == ProtocolNFS {
		return spec, parseNFS(spec, in, flags)
	}
	return spec, parseCephFS(spec, in, flags)
}

func parseNFS(spec *ShareSpec, in specInput, flags []string) error {
	opts, err := validateOptions("NFS mount options ("+KeyNFSMountOptions+" and mount_flags)",
		splitOptions(append([]string{in.volumeContext[KeyNFSMountOptions]}, flags...)...), nfsOptions)
	if err != nil {
		return err
	}
	version := in.volumeContext[KeyNFSVersion]
	for _, key := range []string{"vers", "nfsvers"} {
		v, ok := optionValue(opts, key)
		if !ok {
			continue
		}
		if version != "" && v != version {
			return errInvalid("NFS version %q from %s=%s conflicts with version %q", v, key, v, version)
		}
		version = v
		opts = withoutOption(opts, key)
	}
	if v, ok := optionValue(opts, "minorversion"); ok {
		if version != "" && version != "4" && version != "4."+v {
			return errInvalid("minorversion=%s conflicts with NFS version %q", v, version)
		}
		version = "4." + v
		opts = withoutOption(opts, "minorversion")
	}
	if version == "" {
		version = defaultNFSVersion
	}
	if _, ok := nfsVersions[version]; !ok {
		return errInvalid("NFS version %q is not supported (use 3, 4, 4.0, 4.1 or 4.2)", version)
	}
	spec.NFSVersion, spec.Options = version, opts
	return nil
}

func parseCephFS(spec *ShareSpec, in specInput, flags []string) error {
	spec.Mounter = strings.ToLower(in.volumeContext[KeyCephFSMounter])
	if spec.Mounter == "" {
		spec.Mounter = MounterFuse // the reference's default
	}
	var optionKey string
	var allow map[string]optionKind
	switch spec.Mounter {
	case MounterFuse:
		optionKey, allow = KeyCephFuseOptions, cephFuseOptions
	case MounterKernel:
		optionKey, allow = KeyCephKernelOptions, cephKernelOptions
	default:
		return errInvalid("volume_context[%q] = %q is not kernel or fuse", KeyCephFSMounter, spec.Mounter)
	}
	opts, err := validateOptions("CephFS "+spec.Mounter+" mount options ("+optionKey+" and mount_flags)",
		splitOptions(append([]string{in.volumeContext[optionKey]}, flags...)...), allow)
	if err != nil {
		return err
	}
	spec.Options = opts
	spec.ClientID = in.contextValue(KeyCephClientID)
	if spec.ClientID == "" {
		spec.ClientID = in.secrets[KeyUserID]
	}
	if spec.ClientID == "" {
		return errInvalid("the CephFS volume has no cephx identity: neither volume_context nor publish_context has %q", KeyCephClientID)
	}
	if !tokenValue.MatchString(spec.ClientID) || strings.HasPrefix(spec.ClientID, "-") {
		return errInvalid("%s %q is not a cephx user name", KeyCephClientID, spec.ClientID)
	}
	if spec.FSName = in.volumeContext[KeyFSName]; spec.FSName != "" && !tokenValue.MatchString(spec.FSName) {
		return errInvalid("volume_context[%q] = %q is not a CephFS file system name", KeyFSName, spec.FSName)
	}
	return nil
}

// cephxKey returns the cephx key: stage secrets first, publish context
// second (docs/design.md). The key is a credential: it goes to a 0600
// file and nowhere else, and no message ever quotes it.
func cephxKey(secrets, publishContext map[string]string) (string, error) {
	key := secrets[KeyUserKey]
	if key == "" {
		key = publishContext[KeyUserKey]
	}
	if key == "" {
		return "", errInvalid("no cephx key: neither the stage secrets nor publish_context have %q (is csi.storage.k8s.io/node-stage-secret-name set on the StorageClass?)", KeyUserKey)
	}
	if len(key) > 256 {
		return "", errInvalid("the cephx key in %q is %d bytes; a cephx key is 40", KeyUserKey, len(key))
	}
	for _, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '='
		if !ok {
			return "", errInvalid("the cephx key in %q is not base64", KeyUserKey)
		}
	}
	return key, nil
}
