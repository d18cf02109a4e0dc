package manila

import (
	"net"
	"strings"
)

// maxNodeIDLength is the CSI spec's limit on node_id (256 bytes).
const maxNodeIDLength = 256

// nodeIdentity is a parsed node id: "<node name>" or
// "<node name>/<addr>[,<addr>...]" (the contract with pkg/csi/manilanode:
// a DNS name never contains '/', an address never ',' or '/').
type nodeIdentity struct {
	Name      string
	Addresses []string
}

// parseNodeID splits and checks a node id. It returns the problem as a
// message; the caller picks the code.
func parseNodeID(id string) (nodeIdentity, string) {
	if id == "" {
		return nodeIdentity{}, "node_id is required"
	}
	if len(id) > maxNodeIDLength {
		return nodeIdentity{}, "node_id is longer than 256 bytes"
	}
	name, rest, hasAddrs := strings.Cut(id, "/")
	if name == "" {
		return nodeIdentity{}, "node_id " + quote(id) + " has no node name before '/'"
	}
	n := nodeIdentity{Name: name}
	if !hasAddrs {
		return n, ""
	}
	for _, a := range strings.Split(rest, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil {
			return nodeIdentity{}, "node_id " + quote(id) + ": " + quote(a) + " is not an IP address"
		}
		n.Addresses = append(n.Addresses, ip.String())
	}
	return n, ""
}

func quote(s string) string { return "\"" + s + "\"" }
