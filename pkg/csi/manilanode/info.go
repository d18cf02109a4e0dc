package manilanode

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// maxNodeIDLength is the CSI spec's bound on node_id.
const maxNodeIDLength = 256

// NodeID is "<node name>" or "<node name>/<addr>[,<addr>...]": the
// controller grants per-node NFS access rules to these addresses. A DNS
// name never holds '/', an address never '/' or ','. Addresses that would
// take the id past 256 bytes are left out, in order.
func NodeID(name string, addrs []string) (id string, dropped []string) {
	id = name
	sep := "/"
	for _, a := range addrs {
		if len(id)+len(sep)+len(a) > maxNodeIDLength {
			dropped = append(dropped, a)
			continue
		}
		id += sep + a
		sep = ","
	}
	return id, dropped
}

// ParseNodeID splits a node id into the node name and its addresses.
func ParseNodeID(id string) (name string, addrs []string) {
	name, list, ok := strings.Cut(id, "/")
	if !ok || list == "" {
		return name, nil
	}
	return name, strings.Split(list, ",")
}

// validateNodeName: a Kubernetes node name is a DNS subdomain.
func validateNodeName(name string) error {
	if name == "" {
		return fmt.Errorf("node service: the node name is required (--nodeid or the NODE_NAME environment variable)")
	}
	if len(name) > 253 || strings.ContainsAny(name, "/, \t\n") {
		return fmt.Errorf("node service: node name %q is not a DNS name of at most 253 bytes", name)
	}
	return nil
}

func validateNodeAddress(a string) error {
	addr, err := netip.ParseAddr(a)
	if err != nil || addr.Zone() != "" {
		return fmt.Errorf("node service: node address %q is not an IP address (without a zone)", a)
	}
	return nil
}

// detectAddresses lists the node's addresses an NFS server may see it
// from: every address of an interface that is up, except loopback and
// link-local ones (which no NFS server outside the host can reach).
func detectAddresses() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			prefix, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := prefix.Addr().Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
				continue
			}
			out = append(out, ip.String())
		}
	}
	return out, nil
}

// NodeGetInfo implements csi.NodeServer. It answers itself even when
// forwarding: the node id is ours, not the partner's.
func (ns *NodeServer) NodeGetInfo(ctx context.Context, _ *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	logger := klog.FromContext(ctx)
	addrs := ns.opts.NodeAddresses
	if addrs == nil {
		detected, err := detectAddresses()
		if err != nil {
			return nil, statusFromError(err, "listing the node's addresses (set --node-addresses)")
		}
		addrs = detected
	}
	id, dropped := NodeID(ns.opts.NodeName, addrs)
	if len(dropped) > 0 {
		logger.Info("Node addresses left out of the node id (256 bytes at most)", "nodeID", id, "dropped", dropped)
	}
	resp := &csi.NodeGetInfoResponse{NodeId: id}
	if ns.opts.WithTopology {
		zone, err := ns.zone(ctx)
		if err != nil {
			return nil, err
		}
		resp.AccessibleTopology = &csi.Topology{Segments: map[string]string{TopologyKey: zone}}
	}
	logger.Info("Node identity", "nodeID", id, "withTopology", ns.opts.WithTopology)
	return resp, nil
}

// zone is the configured zone, else the instance metadata's AZ.
func (ns *NodeServer) zone(ctx context.Context) (string, error) {
	if ns.opts.Zone != "" {
		return metadata.SanitizeLabel(ns.opts.Zone), nil
	}
	if ns.opts.Metadata == nil {
		return "", errPrecondition("--with-topology needs the node's zone: set --node-az or let the node read the instance metadata")
	}
	ctx, cancel := withDefaultDeadline(ctx)
	defer cancel()
	md, err := ns.opts.Metadata.Get(ctx)
	if err != nil {
		return "", errUnavailable("reading the availability zone from the instance metadata: %v", err)
	}
	zone := metadata.SanitizeLabel(md.AvailabilityZone)
	if zone == "" {
		return "", errPrecondition("the instance metadata has no availability zone; set --node-az")
	}
	return zone, nil
}
