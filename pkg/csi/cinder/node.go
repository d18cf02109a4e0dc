package cinder

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/util/volumelock"
)

// PublishContextVolumeSizeBytes optionally carries the Cinder volume size in
// bytes (decimal) from ControllerPublish. NodeStage then refuses a device
// smaller than the volume before formatting it. Without it only the serial
// is checked.
const PublishContextVolumeSizeBytes = "cinder.csi.openstack.org/volumeSizeBytes"

// defaultDeviceWait bounds the device lookup of a request that carries no
// deadline. kubelet gives node calls 2 minutes; so do we.
const defaultDeviceWait = 2 * time.Minute

// NodeOptions configure the node service. Zero values take the defaults.
type NodeOptions struct {
	// DriverName is only logged; the identity server reports it.
	DriverName string
	// Metadata gives the server UUID, AZ and tagged devices. Required.
	Metadata metadata.Provider
	// WithTopology reports the AZ as the topology segment TopologyKey.
	WithTopology bool
	// AdditionalTopology segments are reported beside the zone.
	AdditionalTopology map[string]string
	// NodeVolumeAttachLimit is MaxVolumesPerNode. 0 means
	// device.DefaultMaxDisks minus the disks present that are not Cinder
	// volumes (root, ephemeral, config drive), counted at each NodeGetInfo.
	NodeVolumeAttachLimit int64
	// RescanOnResize makes NodeExpandVolume ask the kernel to re-read a
	// device that is smaller than the requested size.
	RescanOnResize bool
	// DevRoot (default /dev) and SysRoot (default /sys) locate devices.
	DevRoot string
	SysRoot string
	// Mounter formats, mounts and runs filesystem tools. Default: the host
	// mounter (without systemd-run) and exec; stage mounts of ext, XFS
	// and btrfs then use mount(2) directly. Bind mounts always do.
	Mounter *mount.SafeFormatAndMount
	// Kata, when set, takes publishes of pods that opt into Kata direct
	// volumes.
	Kata KataPublisher
	// UdevTrigger replaces the udev trigger run between device lookups
	// (default: udevadm, only when DevRoot is /dev).
	UdevTrigger func(ctx context.Context) error
	// MountInfoPath is the mount table to read (default
	// /proc/self/mountinfo).
	MountInfoPath string
	// KubeletRoot is kubelet's --root-dir (default /var/lib/kubelet). Every
	// staging and target path must lie beneath it (docs/design.md, "Trust
	// boundary"); it must exist when the server is built.
	KubeletRoot string
	// Metrics records device discovery, mkfs and mount durations and
	// errors, and stale mounts; nil records nothing.
	Metrics *metrics.Metrics
}

// NodeServer implements the CSI Node service. It makes no OpenStack API
// calls and holds no credentials.
type NodeServer struct {
	csi.UnimplementedNodeServer

	opts    NodeOptions
	finder  *device.Finder
	mounter *mount.SafeFormatAndMount
	// hostMount is true with the default mounter: stage mounts of ext and
	// XFS then use mount(2) rather than the mounter's mount(8).
	hostMount bool
	resizer   *mount.ResizeFs
	locks     *volumelock.Locks
	root      *hostpath.Root
}

var _ csi.NodeServer = (*NodeServer)(nil)

// NewNodeServer validates opts and builds the server. Its only I/O is
// resolving the kubelet root, so a node whose metadata is not reachable
// yet still starts and registers once NodeGetInfo succeeds.
func NewNodeServer(opts NodeOptions) (*NodeServer, error) {
	if opts.Metadata == nil {
		return nil, fmt.Errorf("node service: a metadata provider is required")
	}
	if opts.NodeVolumeAttachLimit < 0 {
		return nil, fmt.Errorf("node service: node-volume-attach-limit %d is negative", opts.NodeVolumeAttachLimit)
	}
	for k, v := range opts.AdditionalTopology {
		if k == "" || k == TopologyKey {
			return nil, fmt.Errorf("node service: additional topology key %q=%q is empty or the zone key", k, v)
		}
	}
	if opts.DriverName == "" {
		opts.DriverName = DefaultDriverName
	}
	if opts.DevRoot == "" {
		opts.DevRoot = "/dev"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.MountInfoPath == "" {
		opts.MountInfoPath = hostpath.DefaultMountInfo
	}
	if opts.KubeletRoot == "" {
		opts.KubeletRoot = hostpath.DefaultKubeletRoot
	}
	root, err := hostpath.NewRoot(opts.KubeletRoot)
	if err != nil {
		return nil, fmt.Errorf("node service: %w", err)
	}
	mounter := opts.Mounter
	if mounter == nil {
		// Without systemd: systemd-run --scope only keeps FUSE daemons
		// alive across kubelet restarts, block filesystems have none, and
		// mount.New probes for it with one more process on the first mount.
		mounter = mount.NewSafeFormatAndMount(mount.NewWithoutSystemd(""), utilexec.New())
	}
	mounter = instrumentMounter(mounter, opts.Metrics)
	return &NodeServer{
		opts: opts,
		finder: device.NewFinder(device.Options{
			DevRoot:  opts.DevRoot,
			SysRoot:  opts.SysRoot,
			Metadata: opts.Metadata,
			Trigger:  opts.UdevTrigger,
		}),
		mounter:   mounter,
		hostMount: opts.Mounter == nil,
		resizer:   mount.NewResizeFs(mounter.Exec),
		locks:     volumelock.New(),
		root:      root,
	}, nil
}

var nodeCapabilities = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// NodeGetCapabilities implements csi.NodeServer.
func (ns *NodeServer) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return capability.Node(nodeCapabilities), nil
}

// NodeGetInfo implements csi.NodeServer: the node id is the Nova server
// UUID, the topology the sanitized AZ plus the additional segments.
func (ns *NodeServer) NodeGetInfo(ctx context.Context, _ *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	md, err := ns.opts.Metadata.Get(ctx)
	if err != nil {
		return nil, StatusFromError(err, "reading the instance metadata (config drive or metadata service)")
	}
	resp := &csi.NodeGetInfoResponse{
		NodeId:            md.UUID,
		MaxVolumesPerNode: ns.maxVolumes(),
	}
	if ns.opts.WithTopology {
		segments := maps.Clone(ns.opts.AdditionalTopology)
		if segments == nil {
			segments = map[string]string{}
		}
		if zone := metadata.SanitizeLabel(md.AvailabilityZone); zone != "" {
			segments[TopologyKey] = zone
		}
		resp.AccessibleTopology = &csi.Topology{Segments: segments}
	}
	klog.FromContext(ctx).Info("Node identity", "nodeID", md.UUID, "zone", md.AvailabilityZone, "maxVolumes", resp.MaxVolumesPerNode)
	return resp, nil
}

// maxVolumes is the configured limit, or the virtio default minus the
// node's own disks. It is never below 1, because 0 means "no limit".
func (ns *NodeServer) maxVolumes() int64 {
	if ns.opts.NodeVolumeAttachLimit > 0 {
		return ns.opts.NodeVolumeAttachLimit
	}
	return int64(max(1, device.DefaultMaxDisks-device.ForeignDisks(ns.opts.SysRoot)))
}

// withDefaultDeadline bounds a request that came without a deadline.
func withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultDeviceWait)
}

// lock takes the per-volume lock or answers Aborted.
func (ns *NodeServer) lock(volumeID string) (unlock func(), err error) {
	if !ns.locks.TryLock(volumeID) {
		return nil, errBusy("volume", volumeID)
	}
	return func() { ns.locks.Unlock(volumeID) }, nil
}

// validateDeviceRequest checks what NodeStageVolume and NodePublishVolume
// are told about the device: the volume capability (reporting whether it
// asks for raw block access) and the size in the publish context.
func validateDeviceRequest(vc *csi.VolumeCapability, publishContext map[string]string) (block bool, err error) {
	if block, err = validateCapability("volume_capability", vc); err != nil {
		return false, err
	}
	if _, err := expectedSize(publishContext); err != nil {
		return false, err
	}
	return block, nil
}

// supportedAccessModes are the modes the node serves; MULTI_NODE modes are
// the controller's business (multiattach block volumes), the node treats
// them like any other block attachment.
var supportedAccessModes = map[csi.VolumeCapability_AccessMode_Mode]bool{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:   true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  true,
	csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:    true,
	csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER:  true,
	csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:   true,
}

// supportedFsTypes are the filesystems the node formats and grows.
var supportedFsTypes = map[string]bool{"ext4": true, "ext3": true, "xfs": true}

// defaultFsType is used when the capability names none (as the reference
// plugin and the provisioner's --default-fstype do).
const defaultFsType = "ext4"

// validateCapability checks the capability in the named request field and
// reports whether it asks for raw block access.
func validateCapability(field string, vc *csi.VolumeCapability) (block bool, err error) {
	if vc == nil {
		return false, errInvalid("%s is required", field)
	}
	if am := vc.GetAccessMode(); am == nil || !supportedAccessModes[am.GetMode()] {
		return false, errInvalid("%s.access_mode %v is not supported", field, vc.GetAccessMode().GetMode())
	}
	switch {
	case vc.GetBlock() != nil:
		return true, nil
	case vc.GetMount() != nil:
		fs := vc.GetMount().GetFsType()
		if fs != "" && !supportedFsTypes[fs] {
			return false, errInvalid("%s.mount.fs_type %q is not supported (use ext4, ext3 or xfs)", field, fs)
		}
		if err := checkMountFlags(field+".mount.mount_flags", vc.GetMount().GetMountFlags()); err != nil {
			return false, err
		}
		return false, nil
	default:
		return false, errInvalid("%s needs an access_type (mount or block)", field)
	}
}

func fsTypeOf(vc *csi.VolumeCapability) string {
	if fs := vc.GetMount().GetFsType(); fs != "" {
		return fs
	}
	return defaultFsType
}

// expectedSize reads PublishContextVolumeSizeBytes (0 when absent).
func expectedSize(publishContext map[string]string) (int64, error) {
	v, ok := publishContext[PublishContextVolumeSizeBytes]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errInvalid("publish_context[%q] = %q is not a byte count", PublishContextVolumeSizeBytes, v)
	}
	return n, nil
}

// findDevice resolves and verifies the device of a volume within ctx.
func (ns *NodeServer) findDevice(ctx context.Context, volumeID string, publishContext map[string]string) (*device.Device, error) {
	minSize, err := expectedSize(publishContext)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	start := time.Now()
	dev, err := ns.finder.Find(ctx, volumeID, publishContext[PublishContextDevicePath])
	if err != nil {
		ns.opts.Metrics.ObserveDeviceDiscovery(metrics.DiscoveryNone, time.Since(start), err)
		return nil, deviceError(volumeID, err)
	}
	err = device.Verify(dev, volumeID, minSize)
	ns.opts.Metrics.ObserveDeviceDiscovery(discoveryMethod(dev.FoundBy), time.Since(start), err)
	if err != nil {
		return nil, deviceError(volumeID, err)
	}
	if dev.Serial == "" {
		// Loop devices and some hypervisors' disks expose no serial: the
		// device was accepted on its link (or metadata entry) and its size
		// alone, and that must be visible when diagnosing a wrong disk.
		klog.FromContext(ctx).Info("Device has no serial to check; verified by its link and size only", "volumeID", volumeID, "device", dev.Path, "node", dev.Node, "foundBy", dev.FoundBy, "sizeBytes", dev.SizeBytes, "minSizeBytes", minSize)
	}
	klog.FromContext(ctx).V(2).Info("Found device", "volumeID", volumeID, "device", dev.Path, "node", dev.Node, "foundBy", dev.FoundBy, "sizeBytes", dev.SizeBytes)
	return dev, nil
}
