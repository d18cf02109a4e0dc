package cinder

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/util/inflight"
)

// Volume context keys the controller sets besides the ones in driver.go.
const (
	volumeContextAffinity     = "affinity"
	volumeContextAntiAffinity = "anti-affinity"
)

// PVC annotations read as Cinder scheduler hints (--pvc-annotations); the
// values are comma lists of volume names or IDs, as in the reference plugin.
const (
	AnnotationAffinity     = "cinder.csi.openstack.org/affinity"
	AnnotationAntiAffinity = "cinder.csi.openstack.org/anti-affinity"
)

// Metadata keys copied onto created volumes and snapshots from the
// sidecars' --extra-create-metadata parameters. Names match the reference
// plugin, so tooling that filters on them keeps working.
const (
	metaPVCName             = "csi.storage.k8s.io/pvc/name"
	metaPVCNamespace        = "csi.storage.k8s.io/pvc/namespace"
	metaPVName              = "csi.storage.k8s.io/pv/name"
	metaSnapshotName        = "csi.storage.k8s.io/volumesnapshot/name"
	metaSnapshotNamespace   = "csi.storage.k8s.io/volumesnapshot/namespace"
	metaSnapshotContentName = "csi.storage.k8s.io/volumesnapshotcontent/name"
)

// volumeDescription is what the reference plugin writes; kept so operators'
// queries keep matching.
const volumeDescription = "Created by OpenStack Cinder CSI driver"

// PVCLookup reads a PersistentVolumeClaim's annotations. The binary wires a
// Kubernetes client when --pvc-annotations is set.
type PVCLookup interface {
	Annotations(ctx context.Context, namespace, name string) (map[string]string, error)
}

// ControllerOptions holds every setting of the controller service. The
// binary fills it from flags and cloud.conf ([BlockStorage]).
type ControllerOptions struct {
	// DriverName is only used in messages; identity reports the name.
	DriverName string
	// Cluster is written as cinder.csi.openstack.org/cluster metadata and
	// scopes the by-name idempotency lookups (--cluster).
	Cluster string
	// WithTopology makes CreateVolume honour topology requirements and
	// return accessible topology (--with-topology).
	WithTopology bool
	// IgnoreVolumeAZ returns the request's preferred topology instead of
	// the created volume's AZ ([BlockStorage] ignore-volume-az).
	IgnoreVolumeAZ bool
	// PVCAnnotations turns PVC affinity annotations into scheduler hints
	// (--pvc-annotations). It needs PVCLookup and the provisioner's
	// --extra-create-metadata.
	PVCAnnotations bool
	PVCLookup      PVCLookup
	// PeerPods is the peer-pod driver (pkg/peerpod): its volumes reach the
	// pod's own VM, so a PVC asking for a host mount is refused.
	PeerPods bool
	// CopyCreateMetadata writes the PVC/PV and VolumeSnapshot names the
	// sidecars pass with --extra-create-metadata into Cinder metadata.
	CopyCreateMetadata bool
	// SnapshotReadyWait is how long CreateSnapshot waits for Cinder before
	// answering ReadyToUse=false and letting the snapshotter poll. Cinder
	// snapshots on Ceph and LVM usually turn available within a second.
	SnapshotReadyWait time.Duration
	// DefaultVolumeSizeGiB applies when a request has no capacity range.
	DefaultVolumeSizeGiB int
}

// DefaultControllerOptions returns the options matching the reference
// plugin's defaults.
func DefaultControllerOptions() ControllerOptions {
	return ControllerOptions{
		DriverName:           DefaultDriverName,
		WithTopology:         true,
		CopyCreateMetadata:   true,
		SnapshotReadyWait:    2 * time.Second,
		DefaultVolumeSizeGiB: 1,
	}
}

// ControllerServer is the CSI controller service.
type ControllerServer struct {
	csi.UnimplementedControllerServer

	clouds openstack.Clouds
	opts   ControllerOptions
	// inFlight rejects a second concurrent request for one volume name,
	// volume id or snapshot name with Aborted.
	inFlight inflight.Guard
}

var _ csi.ControllerServer = (*ControllerServer)(nil)

// NewControllerServer returns the controller service for clouds.
func NewControllerServer(clouds openstack.Clouds, opts ControllerOptions) (*ControllerServer, error) {
	if clouds == nil {
		return nil, errors.New("controller: no clouds configured")
	}
	if len(clouds.Names()) == 0 {
		return nil, errors.New("controller: the cloud configuration names no cloud")
	}
	if opts.PVCAnnotations && opts.PVCLookup == nil {
		return nil, errors.New("controller: PVC annotations are enabled but no PVC lookup is configured")
	}
	if opts.SnapshotReadyWait < 0 {
		return nil, fmt.Errorf("controller: negative snapshot ready wait %v", opts.SnapshotReadyWait)
	}
	if opts.DefaultVolumeSizeGiB <= 0 {
		opts.DefaultVolumeSizeGiB = 1
	}
	if opts.DriverName == "" {
		opts.DriverName = DefaultDriverName
	}
	return &ControllerServer{clouds: clouds, opts: opts}, nil
}

// controllerCapabilities is what we advertise. SINGLE_NODE_MULTI_WRITER is
// needed for ReadWriteOncePod; GET_VOLUME_HEALTH and LIST_VOLUME_HEALTH are
// spec 1.13's replacement of VOLUME_CONDITION.
var controllerCapabilities = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
	csi.ControllerServiceCapability_RPC_GET_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_MODIFY_VOLUME,
	csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
}

// ControllerGetCapabilities lists controllerCapabilities.
func (cs *ControllerServer) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return capability.Controller(controllerCapabilities), nil
}

// cloudFor returns the cloud a request's secrets select. This is the only
// place that reads the `cloud` secret key.
func (cs *ControllerServer) cloudFor(secrets map[string]string) (openstack.Cloud, error) {
	name := secrets[SecretCloudKey]
	c, err := cs.clouds.Get(name)
	if err != nil {
		return nil, errInvalid("secret key %q selects cloud %q, which the controller's cloud.conf does not define (configured: %q)", SecretCloudKey, name, cs.clouds.Names())
	}
	return c, nil
}

// volumeCall is what an RPC on one existing volume starts from: the cloud
// the request's secrets select and the volume as Cinder has it now (nil
// when Cinder does not know it). release frees the RPC's in-flight key.
type volumeCall struct {
	cloud   openstack.Cloud
	vol     *openstack.Volume
	release func()
}

// lockKey is the in-flight key an RPC holds while it works on a volume,
// and what a concurrent request is told is busy.
type lockKey struct{ key, what, name string }

// volumeLock serialises the RPCs that change one volume (delete, expand,
// modify).
func volumeLock(id string) lockKey { return lockKey{"volume/" + id, "volume", id} }

// attachLock serialises publish and unpublish of one volume on one node.
func attachLock(volID, nodeID string) lockKey {
	return lockKey{"attach/" + volID + "/" + nodeID, "attachment", volID + " on " + nodeID}
}

// openVolume is how the RPCs on one existing volume begin: the volume id
// checked (InvalidArgument), the in-flight key held (a concurrent request
// is Aborted), the cloud the secrets select, and one GET of the volume. A
// volume Cinder does not know comes back as vc.vol == nil with no error:
// delete and unpublish answer success for it, the others NotFound. When
// err is nil the caller must call vc.release.
func (cs *ControllerServer) openVolume(ctx context.Context, id string, lk lockKey, secrets map[string]string) (*volumeCall, error) {
	vc, err := cs.openCall(id, lk, secrets)
	if err != nil {
		return nil, err
	}
	vc.vol, err = vc.cloud.GetVolume(ctx, id)
	switch {
	case openstack.IsNotFound(err):
		vc.vol = nil
	case err != nil:
		vc.release()
		return nil, StatusFromError(err, "reading volume %s", id)
	}
	return vc, nil
}

// openCall is openVolume without the GET, for an RPC that asks Cinder
// first and reads the volume only when refused (DeleteVolume).
func (cs *ControllerServer) openCall(id string, lk lockKey, secrets map[string]string) (*volumeCall, error) {
	if err := checkID("volume", id); err != nil {
		return nil, err
	}
	release, ok := cs.inFlight.TryAcquire(lk.key)
	if !ok {
		return nil, errBusy(lk.what, lk.name)
	}
	vc := &volumeCall{release: release}
	var err error
	if vc.cloud, err = cs.cloudFor(secrets); err != nil {
		release()
		return nil, err
	}
	return vc, nil
}

// findVolumeAnyCloud looks a volume up in every configured cloud, for the
// RPCs that carry no secrets. It returns NotFound only when every cloud
// said not found.
func (cs *ControllerServer) findVolumeAnyCloud(ctx context.Context, id string) (openstack.Cloud, *openstack.Volume, error) {
	var firstErr error
	for _, name := range cs.clouds.Names() {
		c, err := cs.clouds.Get(name)
		if err != nil {
			continue
		}
		v, err := c.GetVolume(ctx, id)
		if err == nil {
			return c, v, nil
		}
		if !openstack.IsNotFound(err) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, nil, StatusFromError(firstErr, "looking up volume %s", id)
	}
	return nil, nil, errNotFound("volume %s not found", id)
}

// ownerMeta is the metadata that marks a resource as created by this
// cluster's driver.
func (cs *ControllerServer) ownerMeta() map[string]string {
	return map[string]string{openstack.MetaCluster: cs.opts.Cluster}
}

// uuidPattern recognises Cinder ids, to tell an id from a name.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func looksLikeID(s string) bool { return uuidPattern.MatchString(s) }

// publishedNodes returns the server ids a volume is attached to.
func publishedNodes(v *openstack.Volume) []string {
	var ids []string
	seen := map[string]bool{}
	for _, a := range v.Attachments {
		if a.ServerID != "" && !seen[a.ServerID] {
			seen[a.ServerID] = true
			ids = append(ids, a.ServerID)
		}
	}
	return ids
}

func attachmentFor(v *openstack.Volume, nodeID string) (openstack.VolumeAttachment, bool) {
	for _, a := range v.Attachments {
		if a.ServerID == nodeID {
			return a, true
		}
	}
	return openstack.VolumeAttachment{}, false
}

// latestReason returns Cinder's user message for a resource in error, or
// "" when there is none or it cannot be read (the error path must not fail
// because of the explanation).
func latestReason(ctx context.Context, c openstack.Cloud, id string) string {
	m, err := c.LatestMessage(ctx, id)
	if err != nil || m == nil {
		return ""
	}
	return m.UserMessage
}

// isVolumeErrorStatus reports Cinder's error* statuses.
func isVolumeErrorStatus(s string) bool {
	switch s {
	case openstack.VolumeError, openstack.VolumeErrorDeleting, openstack.VolumeErrorExtending, openstack.VolumeErrorRestoring:
		return true
	}
	return len(s) > 6 && s[:6] == "error_"
}
