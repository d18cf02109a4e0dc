package kata

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/cinder-csi/cinder-csi/pkg/fsopts"
	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
)

// Options configure a Publisher. The zero value plus Enabled, NodeName and
// RuntimeHandlerPrefix is a production setup.
type Options struct {
	// Enabled is the driver flag (--kata-direct-volumes). A disabled
	// publisher never takes a publish but still honours records a previous
	// run left (Holds, Unpublish, Stats, HoldsVolume), so turning the flag
	// off never strands a volume. It needs no Kubernetes API.
	Enabled bool
	// NodeName is this node, for the node opt-in.
	NodeName string
	// NodeOptInLabel is the key=value a node carries as a label or an
	// annotation to opt in (default DefaultNodeOptInLabel).
	NodeOptInLabel string
	// NodeOptIn, when set, replaces reading the node's label/annotation.
	NodeOptIn *bool
	// RecordRoot defaults to DefaultRecordRoot.
	RecordRoot string
	// ShimSocketDirs default to DefaultShimSocketDirs.
	ShimSocketDirs []string
	// RuntimeHandlerPrefix makes RuntimeClasses whose handler starts with
	// it Kata (flag default DefaultRuntimeHandlerPrefix). Empty: only the
	// RuntimeClass annotation opts pods in.
	RuntimeHandlerPrefix string
	// ExcludedRuntimeHandlers default to DefaultExcludedRuntimeHandlers.
	ExcludedRuntimeHandlers []string
	// KubeClient is used when set; else one is built from KubeConfig, else
	// from the in-cluster config.
	KubeClient kubernetes.Interface
	KubeConfig *rest.Config
	// Mounter and Exec default to the host's.
	Mounter mount.Interface
	Exec    utilexec.Interface
	// ShimTimeout defaults to DefaultShimTimeout.
	ShimTimeout time.Duration
	// LookupCacheTTL defaults to DefaultLookupCacheTTL.
	LookupCacheTTL time.Duration
}

// Publisher implements the node server's KataPublisher.
type Publisher struct {
	enabled bool
	// node resolves the node opt-in once; until it has, publishes answer
	// Unavailable rather than guess.
	node  nodeDecision
	store *Store
	optIn *optIn
	host  *hostMounts
	shim  *shimClient

	// failAt is a test seam simulating a crash: when it returns an error
	// for a step, the operation stops right there, leaving the host as a
	// killed plugin would.
	failAt func(step string) error
}

// Steps named to failAt.
const (
	stepRecordWritten  = "record-written"
	stepStagingUnmount = "staging-unmounted"
	stepTargetCreated  = "target-created"
	stepStagingRemount = "staging-remounted"
	stepRecordRemoved  = "record-removed"
	defaultFSType      = "ext4"
	targetDirMode      = 0o750
)

// New builds a Publisher. It removes temporary records a crash left behind
// and, when enabled, reads the node opt-in once.
func New(ctx context.Context, o Options) (*Publisher, error) {
	if o.ShimSocketDirs == nil {
		o.ShimSocketDirs = DefaultShimSocketDirs
	}
	if o.ExcludedRuntimeHandlers == nil {
		o.ExcludedRuntimeHandlers = DefaultExcludedRuntimeHandlers
	}
	if o.NodeOptInLabel == "" {
		o.NodeOptInLabel = DefaultNodeOptInLabel
	}
	if o.ShimTimeout <= 0 {
		o.ShimTimeout = DefaultShimTimeout
	}
	if o.LookupCacheTTL <= 0 {
		o.LookupCacheTTL = DefaultLookupCacheTTL
	}
	if o.Mounter == nil {
		o.Mounter = mount.New("")
	}
	if o.Exec == nil {
		o.Exec = utilexec.New()
	}
	p := &Publisher{
		enabled: o.Enabled,
		store:   NewStore(o.RecordRoot),
		host:    &hostMounts{fm: mount.NewSafeFormatAndMount(o.Mounter, o.Exec), mountInfoPath: procMountInfo},
		shim:    &shimClient{socketDirs: o.ShimSocketDirs, timeout: o.ShimTimeout},
	}
	if n, err := p.store.CleanStaleTemps(); err != nil {
		return nil, fmt.Errorf("cleaning stale Kata temporary records: %w", err)
	} else if n > 0 {
		klog.InfoS("Removed stale temporary Kata records", "count", n, "root", p.store.Root())
	}
	if !o.Enabled {
		return p, nil
	}
	client, err := kubeClient(o.KubeClient, o.KubeConfig)
	if err != nil {
		return nil, err
	}
	p.optIn = newOptIn(client, o.RuntimeHandlerPrefix, o.ExcludedRuntimeHandlers, o.LookupCacheTTL)
	if o.NodeOptIn != nil {
		p.node.set(*o.NodeOptIn)
	} else {
		if _, _, err := parseNodeOptIn(o.NodeOptInLabel); err != nil {
			return nil, err
		}
		if o.NodeName == "" {
			return nil, errors.New("kata direct volumes need the node name (--node-name or $NODE_NAME) to read the node opt-in")
		}
		p.node.lookup = func(ctx context.Context) (bool, error) {
			return nodeOptedIn(ctx, client, o.NodeName, o.NodeOptInLabel)
		}
		// A Node not registered yet or an API server blip must not stop
		// the plugin: that would block every mount on the node, not only
		// Kata ones. The first publish retries the lookup.
		if _, err := p.node.get(ctx); err != nil {
			klog.ErrorS(err, "Cannot read the Kata node opt-in yet; publishes will retry it", "node", o.NodeName)
		}
	}
	klog.InfoS("Kata direct volumes", "enabled", true, "node", o.NodeName,
		"handlerPrefix", o.RuntimeHandlerPrefix, "recordRoot", p.store.Root())
	return p, nil
}

// RecordCount is the number of records on the node (for the metrics gauge).
func (p *Publisher) RecordCount() int {
	entries, err := p.store.List()
	if err != nil {
		return 0
	}
	return len(entries)
}

func (p *Publisher) step(name string) error {
	if p.failAt != nil {
		return p.failAt(name)
	}
	return nil
}

// Wants decides whether a publish takes the direct-volume path. An existing
// record for the target is the decision already taken: a retry finishes it
// whatever the opt-ins say now. A PVC that demands a direct volume
// (kata-mount: direct-volume) and cannot have one is refused with
// FailedPrecondition instead of mounted on the host (see MountChoice).
func (p *Publisher) Wants(ctx context.Context, req *csi.NodePublishVolumeRequest) (bool, error) {
	if p.Holds(req.GetTargetPath()) {
		return true, nil
	}
	vc := req.GetVolumeContext()
	pvc := vc[VolumeContextKataMount]
	if err := ParseMount(pvc); err != nil {
		return false, kataerr.Errorf(kataerr.Invalid, "volume context: %w", err)
	}
	// host unless the PVC demanded direct-volume, in which case why.
	hostOr := func(why string) (bool, error) {
		if pvc == OptInValue {
			return false, kataerr.Errorf(kataerr.Precondition, "volume %s: the PVC asks for %s=%s but %s",
				req.GetVolumeId(), OptInKey, OptInValue, why)
		}
		return false, nil
	}
	if !p.enabled {
		return hostOr("this node plugin runs without --kata-direct-volumes")
	}
	nodeOptIn, err := p.node.get(ctx)
	if err != nil {
		return false, kataerr.Errorf(kataerr.Unavailable, "reading this node's Kata opt-in: %w", err)
	}
	if !nodeOptIn {
		return hostOr("this node has not opted in to Kata direct volumes")
	}
	if req.GetVolumeCapability().GetBlock() != nil {
		return false, nil // a raw block device already reaches the guest as a device
	}
	optOut, err := classOptOut(vc)
	if err != nil {
		return false, kataerr.Errorf(kataerr.Invalid, "StorageClass opt-out of Kata direct volumes: %w", err)
	}
	if vc[EphemeralKey] == "true" {
		return false, nil
	}
	if optOut || pvc == MountHost {
		direct, refusal := MountChoice(optOut, pvc, RuntimeNotKata)
		if refusal != "" {
			return false, kataerr.Errorf(kataerr.Precondition, "volume %s: %s", req.GetVolumeId(), refusal)
		}
		return direct, nil // no pod lookup: the answer is host whatever the pod
	}
	ref, ok := podFromContext(vc)
	if !ok {
		klog.InfoS("No pod information in NodePublish; not a Kata direct volume (is podInfoOnMount true on the CSIDriver?)",
			"volumeID", req.GetVolumeId())
		return hostOr("NodePublish carries no pod information (podInfoOnMount is off)")
	}
	runtime, _, err := p.optIn.podRuntime(ctx, ref)
	if err != nil {
		return false, kataerr.Errorf(kataerr.Unavailable, "deciding whether pod %s uses Kata direct volumes: %w", ref, err)
	}
	direct, refusal := MountChoice(optOut, pvc, runtime)
	if refusal != "" {
		return false, kataerr.Errorf(kataerr.Precondition, "volume %s, pod %s: %s", req.GetVolumeId(), ref, refusal)
	}
	return direct, nil
}

// Holds reports whether a record exists for the target path.
func (p *Publisher) Holds(targetPath string) bool { return p.store.Exists(targetPath) }

// HoldsVolume reports whether a record holds the volume. When the records
// cannot be read it says true: refusing an expansion is safe, growing a
// device a guest owns is not.
func (p *Publisher) HoldsVolume(volumeID string) bool {
	entries, err := p.store.FindVolume(volumeID)
	if err != nil {
		klog.ErrorS(err, "Reading Kata records; assuming the volume is held", "volumeID", volumeID)
		return true
	}
	return len(entries) > 0
}

// Publish hands the device to Kata. Order: check, make sure staging holds
// the formatted filesystem, write the record, unmount staging, create the
// target. Writing the record before unmounting means a crash can never
// leave staging unmounted without a record saying where it belongs; every
// crash point converges on retry (or on unpublish).
func (p *Publisher) Publish(ctx context.Context, req *csi.NodePublishVolumeRequest, devicePath string) (*csi.NodePublishVolumeResponse, error) {
	volumeID, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := checkPublishRequest(req, devicePath); err != nil {
		return nil, err
	}
	pf, err := p.podFacts(ctx, req)
	if err != nil {
		return nil, err
	}
	existing, err := p.recordOf(target, volumeID)
	if err != nil {
		return nil, err
	}
	if err := p.refuseOtherTargets(volumeID, target); err != nil {
		return nil, err
	}
	dev, err := blockDevice(devicePath)
	if err != nil {
		return nil, kataerr.Errorf(kataerr.Precondition, "device of volume %s: %w", volumeID, err)
	}
	fstype, stagingMounted, err := p.ensureFormatted(req, devicePath, dev, existing != nil)
	if err != nil {
		return nil, err
	}
	if err := p.refuseOtherMounts(dev, devicePath, staging); err != nil {
		return nil, err
	}
	mi := buildRecord(req, devicePath, fstype, pf)
	if pf == nil && existing != nil {
		// Finishing a record without the pod at hand (the feature was
		// switched off meanwhile): keep the fsGroup it was written with.
		keepFSGroup(mi, existing)
	}
	if err := p.handOver(target, staging, mi, stagingMounted); err != nil {
		return nil, err
	}
	klog.InfoS("Published Kata direct volume", "volumeID", volumeID, "target", target, "device", devicePath, "fstype", fstype)
	return &csi.NodePublishVolumeResponse{}, nil
}

// checkPublishRequest refuses a publish request Kata cannot serve, before
// anything is read or changed.
func checkPublishRequest(req *csi.NodePublishVolumeRequest, devicePath string) error {
	target := req.GetTargetPath()
	if req.GetVolumeId() == "" || target == "" || req.GetStagingTargetPath() == "" || devicePath == "" {
		return kataerr.Errorf(kataerr.Invalid, "Kata publish needs the volume id, target, staging path and device")
	}
	capability := req.GetVolumeCapability()
	if capability.GetMount() == nil {
		return kataerr.Errorf(kataerr.Precondition, "Kata direct volumes need the filesystem access type")
	}
	if mode := capability.GetAccessMode().GetMode(); mode != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return kataerr.Errorf(kataerr.Precondition,
			"Kata direct volume needs the ReadWriteOncePod access mode (SINGLE_NODE_SINGLE_WRITER), got %s: one guest must own the filesystem", mode)
	}
	if _, err := EncodePath(target); err != nil {
		return kataerr.Errorf(kataerr.Invalid, "target path %q: %w", target, err)
	}
	return nil
}

// recordOf reads the Kata record at target (nil when there is none) and
// refuses one that belongs to another volume.
func (p *Publisher) recordOf(target, volumeID string) (*MountInfo, error) {
	existing, err := p.store.Read(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, kataerr.Errorf(kataerr.Internal, "reading the Kata record of %s: %w", target, err)
	}
	if existing != nil && existing.Metadata[MetaVolumeID] != volumeID {
		return nil, kataerr.Errorf(kataerr.AlreadyExists, "target %s holds the Kata record of volume %q", target, existing.Metadata[MetaVolumeID])
	}
	return existing, nil
}

// keepFSGroup copies a valid (above 0) fsGroup and its policy from the
// existing record into mi.
func keepFSGroup(mi, existing *MountInfo) {
	if g, err := strconv.ParseInt(existing.Metadata[MetaFSGroup], 10, 64); err == nil && g > 0 {
		for _, k := range []string{MetaFSGroup, MetaFSGroupChangePolicy} {
			if v, ok := existing.Metadata[k]; ok {
				mi.Metadata[k] = v
			}
		}
	}
}

// handOver gives the device to the guest: write the record, unmount
// staging, create the target, with a crash point after each step.
func (p *Publisher) handOver(target, staging string, mi *MountInfo, stagingMounted bool) error {
	if err := p.store.Write(target, mi); err != nil {
		if errors.Is(err, ErrRecordConflict) {
			return kataerr.Errorf(kataerr.AlreadyExists, "target %s: %w; unpublish it first", target, err)
		}
		return kataerr.Errorf(kataerr.Internal, "writing the Kata record of %s: %w", target, err)
	}
	if err := p.step(stepRecordWritten); err != nil {
		return err
	}
	if stagingMounted {
		if err := p.host.unmount(staging); err != nil {
			return kataerr.Errorf(kataerr.Internal, "unmounting staging %s so the guest owns the device: %w", staging, err)
		}
	}
	if err := p.step(stepStagingUnmount); err != nil {
		return err
	}
	if err := os.MkdirAll(target, targetDirMode); err != nil {
		return kataerr.Errorf(kataerr.Internal, "creating target %s: %w", target, err)
	}
	return p.step(stepTargetCreated)
}

// podFacts returns the pod's facts for the record and refuses subPath use.
// Without pod information (only possible for a record being retried after
// the opt-ins changed) the record carries no fsGroup.
func (p *Publisher) podFacts(ctx context.Context, req *csi.NodePublishVolumeRequest) (*podFacts, error) {
	ref, ok := podFromContext(req.GetVolumeContext())
	if !ok || p.optIn == nil {
		return nil, nil
	}
	pf, err := p.optIn.pod(ctx, ref)
	if err != nil {
		return nil, kataerr.Errorf(kataerr.Unavailable, "Kata direct volume of pod %s: %w", ref, err)
	}
	uses, err := p.optIn.subPathUser(ctx, pf, req.GetTargetPath())
	if err != nil {
		return nil, kataerr.Errorf(kataerr.Unavailable, "Kata direct volume of pod %s: %w", ref, err)
	}
	if uses {
		return nil, kataerr.Errorf(kataerr.Precondition,
			"pod %s mounts volume %s with subPath, which Kata direct volumes cannot serve; use a StorageClass with kataDirectVolume: \"false\"", ref, req.GetVolumeId())
	}
	return pf, nil
}

// refuseOtherTargets enforces one Kata publication per volume.
func (p *Publisher) refuseOtherTargets(volumeID, target string) error {
	entries, err := p.store.FindVolume(volumeID)
	if err != nil {
		return kataerr.Errorf(kataerr.Internal, "reading Kata records: %w", err)
	}
	for _, e := range entries {
		if e.TargetPath != target {
			return kataerr.Errorf(kataerr.Precondition,
				"volume %s is already published to a Kata guest at %s; a direct volume has one publication", volumeID, e.TargetPath)
		}
	}
	return nil
}

// ensureFormatted makes sure the device carries a filesystem and reports
// its type and whether staging currently mounts it. Normally staging is
// mounted (NodeStage formatted it). On a retry after the record was written
// staging may already be unmounted; blkid then names the filesystem.
func (p *Publisher) ensureFormatted(req *csi.NodePublishVolumeRequest, devicePath string, dev devNum, haveRecord bool) (string, bool, error) {
	staging := req.GetStagingTargetPath()
	want := req.GetVolumeCapability().GetMount().GetFsType()
	m, err := p.host.mountAt(staging)
	if err != nil {
		return "", false, kataerr.Errorf(kataerr.Internal, "reading the mount table to check staging %s: %w", staging, err)
	}
	fstype, mounted := "", m != nil
	switch {
	case mounted:
		if got := mountedDevice(m); got != dev {
			return "", false, kataerr.Errorf(kataerr.Precondition,
				"staging %s mounts device %s, not %s (%s)", staging, got, devicePath, dev)
		}
		fstype = m.FsType
	default:
		if fstype, err = p.host.diskFormat(devicePath); err != nil {
			return "", false, kataerr.Errorf(kataerr.Internal, "probing the filesystem of %s: %w", devicePath, err)
		}
		if fstype == "" && !haveRecord {
			// Not staged (or staging lost): the normal staging step
			// formats a blank device and proves the filesystem mounts.
			if want == "" {
				want = defaultFSType
			}
			if err := p.host.formatAndMount(devicePath, staging, want, stageOptions(req, want)); err != nil {
				return "", false, kataerr.Errorf(kataerr.Internal, "formatting %s: %w", devicePath, err)
			}
			fstype, mounted = want, true
		}
		if fstype == "" {
			return "", false, kataerr.Errorf(kataerr.Precondition, "device %s has no filesystem although a Kata record exists for it", devicePath)
		}
	}
	if want != "" && !fsopts.SameFamily(want, fstype) {
		return "", false, kataerr.Errorf(kataerr.Precondition,
			"volume %s holds a %s filesystem, the capability asks for %s", req.GetVolumeId(), fstype, want)
	}
	return fstype, mounted, nil
}

// refuseOtherMounts makes sure nothing but staging mounts the device: a
// host mount and a guest mount of one filesystem corrupt it.
func (p *Publisher) refuseOtherMounts(dev devNum, devicePath, staging string) error {
	points, err := p.host.mountsOf(dev)
	if err != nil {
		return kataerr.Errorf(kataerr.Internal, "reading the mount table to check the other mounts of %s: %w", devicePath, err)
	}
	own := canonical(staging)
	for _, mp := range points {
		if mp != own {
			return kataerr.Errorf(kataerr.Precondition,
				"device %s is also mounted at %s on this node; a Kata guest must be its only user", devicePath, mp)
		}
	}
	return nil
}

// stageOptions are the flags staging is (re)mounted with: the capability's,
// as NodeStage uses them, nouuid for XFS (clones share their source's
// UUID) and never bind, which would turn the typed mount into a bind.
func stageOptions(req *csi.NodePublishVolumeRequest, fstype string) []string {
	var opts []string
	for _, f := range req.GetVolumeCapability().GetMount().GetMountFlags() {
		if f != "bind" && !slices.Contains(opts, f) {
			opts = append(opts, f)
		}
	}
	return fsopts.WithNoUUID(fstype, opts)
}

// buildRecord derives the record from the request alone (plus the pod), so
// a retry produces the identical record.
func buildRecord(req *csi.NodePublishVolumeRequest, devicePath, fstype string, pf *podFacts) *MountInfo {
	var opts []string
	for _, f := range req.GetVolumeCapability().GetMount().GetMountFlags() {
		// bind is a host notion, rw is the default and ro is added below.
		if f == "bind" || f == "rw" || f == "ro" || slices.Contains(opts, f) {
			continue
		}
		opts = append(opts, f)
	}
	opts = fsopts.WithNoUUID(fstype, opts) // the guest may hold a clone's twin too
	if req.GetReadonly() {
		opts = append(opts, "ro")
	}
	md := map[string]string{
		MetaVolumeID:     req.GetVolumeId(),
		MetaStagingPath:  req.GetStagingTargetPath(),
		MetaStageFSType:  fstype,
		MetaStageOptions: marshalOptions(stageOptions(req, fstype)),
	}
	// The Go runtime's agent refuses an fsGroup not above 0 ("m.FSGroup
	// value was out of range: 0") and the container never starts; 0 is
	// root's group, which needs no ownership change anyway, so a pod with
	// fsGroup 0 gets neither fsGroup nor its policy in the record.
	if pf != nil && pf.fsGroup != nil && *pf.fsGroup > 0 {
		md[MetaFSGroup] = strconv.FormatInt(*pf.fsGroup, 10)
		if pf.fsGroupChangePolicy != "" {
			md[MetaFSGroupChangePolicy] = pf.fsGroupChangePolicy
		}
	}
	return &MountInfo{VolumeType: VolumeTypeDirect, Device: devicePath, FsType: fstype, Metadata: md, Options: opts}
}

// nodeDecision is the node opt-in, read once and then kept: it is a label
// an operator sets before scheduling Kata pods, and re-reading it per
// publish would cost an API call per mount.
type nodeDecision struct {
	mu     sync.Mutex
	known  bool
	value  bool
	lookup func(ctx context.Context) (bool, error)
}

func (d *nodeDecision) set(v bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.known, d.value = true, v
}

func (d *nodeDecision) get(ctx context.Context) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known || d.lookup == nil {
		return d.value, nil
	}
	v, err := d.lookup(ctx)
	if err != nil {
		return false, err
	}
	d.known, d.value = true, v
	return v, nil
}
