package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// nodeFlags are the node service's own flags. The node name comes from
// --nodeid (the reference's manifests pass the Kubernetes node name there),
// else $NODE_NAME, else the host name; the zone from --nodeaz, else the
// instance metadata.
type nodeFlags struct {
	addresses   string
	kubeletRoot string
	stateDir    string
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.addresses, "node-addresses", "", "comma-separated IP addresses the NFS server sees this node from, for per-node access rules (default: every address of an up interface except loopback and link-local)")
	fs.StringVar(&n.kubeletRoot, "kubelet-root-dir", manilanode.DefaultKubeletRoot, "kubelet's --root-dir: every staging and target path must lie beneath it")
	fs.StringVar(&n.stateDir, "state-dir", "", "directory for stage records and cephx key files (default <kubelet-root-dir>/plugins/<drivername>/state)")
}

func buildNode(_ context.Context, o *options, _ *metrics.Metrics) (csi.NodeServer, error) {
	name := o.deprecatedNodeID
	if name == "" {
		name = os.Getenv("NODE_NAME")
	}
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node name: set --nodeid or NODE_NAME: %w", err)
		}
		name = h
	}
	var addrs []string
	if a := strings.TrimSpace(o.nodeServiceFlags.addresses); a != "" {
		for _, s := range strings.Split(a, ",") {
			if _, err := netip.ParseAddr(strings.TrimSpace(s)); err != nil {
				return nil, fmt.Errorf("--node-addresses: %q is not an IP address", s)
			}
			addrs = append(addrs, strings.TrimSpace(s))
		}
	}
	opts := manilanode.NodeOptions{
		DriverName: o.driverName, NodeName: name, NodeAddresses: addrs,
		WithTopology: o.withTopology, Zone: o.deprecatedNodeAZ,
		KubeletRootDir: o.nodeServiceFlags.kubeletRoot, StateDir: o.nodeServiceFlags.stateDir,
		DefaultProtocol: o.protocolSelector, ForwardEndpoint: o.fwdEndpoint,
	}
	if o.withTopology && o.deprecatedNodeAZ == "" {
		md, err := metadata.New(metadata.Options{})
		if err != nil {
			return nil, err
		}
		opts.Metadata = md
	}
	ns, err := manilanode.NewNodeServer(opts)
	if err != nil {
		return nil, err
	}
	klog.InfoS("Manila node service", "node", name, "kubeletRoot", opts.KubeletRootDir, "forwardTo", o.fwdEndpoint)
	return ns, nil
}
