package manila

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/util/inflight"
)

// Cephx key deliveries (--cephx-key-delivery).
const (
	// DeliverySecret writes the key into a Kubernetes Secret that the
	// StorageClass hands to NodeStageVolume as a stage secret.
	DeliverySecret = "secret"
	// DeliveryPublishContext returns the key in the publish context, for
	// COs without a secret store and the in-process tests.
	DeliveryPublishContext = "publish-context"
)

// PVCLookup reads a PersistentVolumeClaim's annotations (--pvc-annotations).
type PVCLookup interface {
	Annotations(ctx context.Context, namespace, name string) (map[string]string, error)
}

// KeyStore keeps cephx keys where only the nodes that stage a volume can
// read them: a Kubernetes Secret, read by the kubelet through the node
// authorizer. Put and Delete are idempotent.
type KeyStore interface {
	Put(ctx context.Context, namespace, name string, data map[string]string) error
	Delete(ctx context.Context, namespace, name string) error
	// DefaultNamespace is where Secrets go when the class names none.
	DefaultNamespace() string
}

// NodeDirectory answers whether a node is known to the CO (the CSINode of
// this driver exists). Without one every node id that parses is accepted.
type NodeDirectory interface {
	NodeExists(ctx context.Context, nodeName string) (bool, error)
}

// ControllerOptions holds every setting of the controller service.
type ControllerOptions struct {
	DriverName string
	// DefaultProtocol is --share-protocol-selector; a class's `protocol`
	// parameter overrides it.
	DefaultProtocol string
	// ClusterID is written as manila.csi.openstack.org/cluster metadata
	// and scopes the by-name lookups (--cluster-id).
	ClusterID    string
	WithTopology bool
	// Runtime is the --runtime-config-file content.
	Runtime RuntimeConfig
	// PVCAnnotations turns PVC annotations into scheduler hints and the
	// share group (--pvc-annotations); it needs PVCLookup.
	PVCAnnotations bool
	PVCLookup      PVCLookup
	// KeyDelivery is DeliverySecret (needs Keys) or DeliveryPublishContext.
	KeyDelivery string
	Keys        KeyStore
	Nodes       NodeDirectory
	// SnapshotReadyWait is how long CreateSnapshot waits before answering
	// ReadyToUse=false; Manila snapshots took 0.4–0.8 s on the rig
	// (../shared/reference/manila.md, REST latencies).
	SnapshotReadyWait time.Duration
	// DefaultShareSizeGiB applies when a request has no capacity range.
	DefaultShareSizeGiB int
}

// DefaultControllerOptions returns the reference plugin's defaults.
func DefaultControllerOptions() ControllerOptions {
	return ControllerOptions{
		DriverName:          DefaultDriverName,
		DefaultProtocol:     params.ProtocolNFS,
		WithTopology:        false,
		KeyDelivery:         DeliverySecret,
		SnapshotReadyWait:   2 * time.Second,
		DefaultShareSizeGiB: 1,
	}
}

// ControllerServer is the Manila CSI controller service.
type ControllerServer struct {
	csi.UnimplementedControllerServer

	clouds openstack.ShareClouds
	opts   ControllerOptions
	// inFlight rejects a second concurrent request for one volume name,
	// share id or snapshot name with Aborted.
	inFlight inflight.Guard
	// shareLocks serialise publishes of one share to several nodes (RWX):
	// each reads the share's rules and adds its own.
	shareLocks keyedLock
}

var _ csi.ControllerServer = (*ControllerServer)(nil)

// NewControllerServer returns the controller service for clouds.
func NewControllerServer(clouds openstack.ShareClouds, opts ControllerOptions) (*ControllerServer, error) {
	if clouds == nil {
		return nil, errors.New("manila controller: no clouds configured")
	}
	if opts.PVCAnnotations && opts.PVCLookup == nil {
		return nil, errors.New("manila controller: PVC annotations are enabled but no PVC lookup is configured")
	}
	switch opts.KeyDelivery {
	case DeliverySecret:
		if opts.Keys == nil {
			return nil, errors.New("manila controller: --cephx-key-delivery=secret needs a Kubernetes client for Secrets")
		}
	case DeliveryPublishContext:
	default:
		return nil, fmt.Errorf("manila controller: cephx key delivery %q is neither %s nor %s", opts.KeyDelivery, DeliverySecret, DeliveryPublishContext)
	}
	p, err := params.ParseProtocol("--share-protocol-selector", opts.DefaultProtocol)
	if err != nil {
		return nil, fmt.Errorf("manila controller: %w", err)
	}
	opts.DefaultProtocol = p
	if opts.DefaultShareSizeGiB <= 0 {
		opts.DefaultShareSizeGiB = 1
	}
	if opts.DriverName == "" {
		opts.DriverName = DefaultDriverName
	}
	return &ControllerServer{clouds: clouds, opts: opts}, nil
}

var controllerCapabilities = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_GET_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
}

// ControllerGetCapabilities lists controllerCapabilities.
func (cs *ControllerServer) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return capability.Controller(controllerCapabilities), nil
}

// cloudFor returns the cloud a request's secrets select: the reference's
// os-* keys, a `cloud` key naming a cloud.conf section, or [Global].
func (cs *ControllerServer) cloudFor(ctx context.Context, secrets map[string]string) (openstack.ShareCloud, error) {
	c, err := cs.clouds.ForSecrets(ctx, secrets)
	if err != nil {
		return nil, StatusFromError(err, "choosing the cloud from the request's secrets")
	}
	return c, nil
}

// ownerMeta marks shares and snapshots this cluster's driver made; nil
// without --cluster-id, as the reference writes nothing then.
func (cs *ControllerServer) ownerMeta() map[string]string {
	if cs.opts.ClusterID == "" {
		return nil
	}
	return map[string]string{openstack.MetaManilaCluster: cs.opts.ClusterID}
}

// latestReason returns Manila's user message for a resource in error, or
// "" (the error path must not fail because of the explanation).
func latestReason(ctx context.Context, c openstack.ShareCloud, id string) string {
	m, err := c.LatestShareMessage(ctx, id)
	if err != nil || m == nil {
		return ""
	}
	return m.UserMessage
}

func isShareErrorStatus(s string) bool {
	switch s {
	case openstack.ShareError, openstack.ShareErrorDeleting, openstack.ShareExtendingError, openstack.ShareShrinkingError:
		return true
	}
	return false
}

// keyedLock is a blocking per-key mutex whose Lock follows the context:
// publishes of one share to many nodes queue instead of failing, and a
// waiter whose deadline passes gives up.
type keyedLock struct {
	mu   sync.Mutex
	keys map[string]chan struct{}
}

func (l *keyedLock) Lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		if l.keys == nil {
			l.keys = map[string]chan struct{}{}
		}
		held, busy := l.keys[key]
		if !busy {
			ch := make(chan struct{})
			l.keys[key] = ch
			l.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					delete(l.keys, key)
					l.mu.Unlock()
					close(ch)
				})
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
