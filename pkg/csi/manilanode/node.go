// Package manilanode is the CSI Node service of manila.csi.openstack.org.
// It mounts Manila shares itself: NFS with the kernel client, CephFS with
// ceph-fuse or the kernel client, then bind-mounts them into pods. With a
// forward endpoint it instead hands every node call to a partner CSI
// driver, as the reference plugin does. It makes no OpenStack calls and
// holds no OpenStack credentials; the only secret it sees is a volume's
// cephx key, which it keeps in a 0600 file while the volume is staged.
package manilanode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/util/volumelock"
)

// Defaults of NodeOptions.
const (
	DefaultDriverName  = "manila.csi.openstack.org"
	DefaultKubeletRoot = hostpath.DefaultKubeletRoot
	// TopologyKey is the zone segment, as the reference names it.
	TopologyKey = "topology.manila.csi.openstack.org/zone"
	// defaultCallBudget bounds a request without a deadline: kubelet gives
	// node calls 2 minutes, so do we.
	defaultCallBudget = 2 * time.Minute
	// defaultForwardConnect bounds the connection to a partner driver. A
	// local unix socket connects in well under a millisecond; 10 s leaves
	// room for a partner that is restarting and answers Unavailable, which
	// kubelet retries, instead of hanging "still connecting" (#1653).
	defaultForwardConnect = 10 * time.Second
)

// NodeOptions configure the node service. Zero values take the defaults.
type NodeOptions struct {
	DriverName string
	// NodeName is the node's name (the Kubernetes node name). Required.
	NodeName string
	// NodeAddresses go into the node id for the controller's per-node NFS
	// access rules. nil detects them: every address of an interface that
	// is up, except loopback and link-local ones.
	NodeAddresses []string
	// WithTopology reports the zone as TopologyKey.
	WithTopology bool
	// Zone is the node's zone; "" asks Metadata for the AZ.
	Zone     string
	Metadata MetadataGetter
	// KubeletRootDir is where every staging and target path must lie
	// (default /var/lib/kubelet).
	KubeletRootDir string
	// StateDir holds stage records and cephx key files (default
	// <KubeletRootDir>/plugins/manila.csi.openstack.org/state).
	StateDir string
	// DefaultProtocol is used when a volume context names no protocol
	// (--share-protocol-selector; static PVs of the reference).
	DefaultProtocol string
	// Mounter mounts shares; default NewHostMounter.
	Mounter Mounter
	// ForwardEndpoint, when set, is a partner CSI driver's socket
	// ("unix:///csi/csi-nfs.sock") that receives every node call.
	ForwardEndpoint string
	// ForwardConnectTimeout bounds connecting to it (default 10 s).
	ForwardConnectTimeout time.Duration
}

// MetadataGetter is the part of metadata.Provider the node uses: the AZ.
type MetadataGetter interface {
	Get(ctx context.Context) (*metadata.Metadata, error)
}

// NodeServer implements the CSI Node service.
type NodeServer struct {
	csi.UnimplementedNodeServer

	opts    NodeOptions
	root    *hostpath.Root
	store   store
	mounter Mounter
	locks   *volumelock.Locks
	fwd     *forwarder
}

var _ csi.NodeServer = (*NodeServer)(nil)

// NewNodeServer checks opts, creates the state directory and builds the
// server. It does not connect to a forward endpoint: that happens on the
// first call, bounded, so the plugin starts before its partner does.
func NewNodeServer(opts NodeOptions) (*NodeServer, error) {
	if opts.DriverName == "" {
		opts.DriverName = DefaultDriverName
	}
	if err := validateNodeName(opts.NodeName); err != nil {
		return nil, err
	}
	if opts.KubeletRootDir == "" {
		opts.KubeletRootDir = DefaultKubeletRoot
	}
	if filepath.IsAbs(opts.KubeletRootDir) && filepath.Clean(opts.KubeletRootDir) != "/" {
		if err := os.MkdirAll(opts.KubeletRootDir, 0o750); err != nil {
			return nil, fmt.Errorf("node service: kubelet root: %w", err)
		}
	}
	// The mount table shows resolved paths; hostpath resolves the root once.
	root, err := hostpath.NewRoot(opts.KubeletRootDir)
	if err != nil {
		return nil, fmt.Errorf("node service: %w", err)
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(root.Dir(), "plugins", opts.DriverName, "state")
	}
	switch strings.ToUpper(opts.DefaultProtocol) {
	case "", ProtocolNFS, ProtocolCephFS:
	default:
		return nil, fmt.Errorf("node service: share protocol %q is not NFS or CEPHFS", opts.DefaultProtocol)
	}
	for _, a := range opts.NodeAddresses {
		if err := validateNodeAddress(a); err != nil {
			return nil, err
		}
	}
	if opts.ForwardConnectTimeout <= 0 {
		opts.ForwardConnectTimeout = defaultForwardConnect
	}
	ns := &NodeServer{opts: opts, root: root, store: store{dir: opts.StateDir}, locks: volumelock.New()}
	if opts.ForwardEndpoint != "" {
		if ns.fwd, err = newForwarder(opts.ForwardEndpoint, opts.ForwardConnectTimeout); err != nil {
			return nil, err
		}
		return ns, nil
	}
	if err := ns.store.init(); err != nil {
		return nil, fmt.Errorf("node service: %w", err)
	}
	ns.mounter = opts.Mounter
	if ns.mounter == nil {
		ns.mounter = NewHostMounter(ns.store.cephDir())
	}
	return ns, nil
}

// Close releases the connection to a partner driver.
func (ns *NodeServer) Close() error {
	if ns.fwd != nil {
		return ns.fwd.close()
	}
	return nil
}

var nodeCapabilities = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// NodeGetCapabilities implements csi.NodeServer. Forwarding, it reports
// what the partner does.
func (ns *NodeServer) NodeGetCapabilities(ctx context.Context, req *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	if ns.fwd != nil {
		return ns.fwd.getCapabilities(ctx, req)
	}
	return capability.Node(nodeCapabilities), nil
}

// lock takes the per-volume lock or answers Aborted.
func (ns *NodeServer) lock(volumeID string) (unlock func(), err error) {
	if !ns.locks.TryLock(volumeID) {
		return nil, errBusy(volumeID)
	}
	return func() { ns.locks.Unlock(volumeID) }, nil
}

// withDefaultDeadline bounds a request that came without a deadline.
func withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultCallBudget)
}
