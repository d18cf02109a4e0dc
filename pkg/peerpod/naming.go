// Package peerpod is the Cinder driver's peer-pod mode: a volume attached
// to the pod's own VM (Kata's remote hypervisor, cloud-api-adaptor), not to
// the worker. The same binary serves it under a second CSIDriver name
// (DriverName) with attachRequired: false; see docs/peer-pods.md.
//
// Pieces: the worker-side node service writes the direct-volume record
// cloud-api-adaptor's proxy reads (NodeServer); the controller keeps the
// ordinary Cinder controller with the peer-pod rules (Controller); and the
// Reconciler attaches each peer pod's volumes to its VM once that VM
// exists, detaches them when it goes, and frees any volume still attached
// to a VM that no longer exists.
package peerpod

import (
	"fmt"
	"regexp"
	"strings"
)

const (
	// DriverName is the peer-pod CSIDriver name. A separate name, rather
	// than a StorageClass parameter of cinder.csi.openstack.org, because
	// attachRequired is a property of the CSIDriver: peer-pod volumes must
	// never be attached to the worker.
	DriverName = "cinder-peerpod.csi.openstack.org"

	// instancePrefix and the naming rules are cloud-api-adaptor's
	// util.GenerateInstanceName(podName, sandboxID, 63).
	instancePrefix  = "podvm-"
	instanceNameMax = 63
	sandboxIDChars  = 8
)

var unsafeNameChars = regexp.MustCompile(`[^a-z0-9-]`)

// sanitize lowercases and turns anything outside [a-z0-9-] into '-'.
func sanitize(s string) string { return unsafeNameChars.ReplaceAllString(strings.ToLower(s), "-") }

// podPart is the pod name as it appears in an instance name: sanitized and
// cut so that the whole name fits 63 characters.
func podPart(podName string) string {
	p := sanitize(podName)
	if limit := instanceNameMax - len(instancePrefix) - 1 - sandboxIDChars; len(p) > limit {
		p = p[:limit]
	}
	return p
}

// InstanceName is the name cloud-api-adaptor gives a pod's VM:
// podvm-<pod>-<sandbox id[:8]>.
func InstanceName(podName, sandboxID string) string {
	sid := sanitize(sandboxID)
	if len(sid) > sandboxIDChars {
		sid = sid[:sandboxIDChars]
	}
	return instancePrefix + podPart(podName) + "-" + sid
}

// InstanceNamePattern matches the names cloud-api-adaptor can give the VMs
// of a pod named podName, whatever its sandbox id. A cut pod name may
// match another pod's VM with the same first 48 characters; the Locator
// therefore prefers the PeerPod CR, which names the pod by UID.
func InstanceNamePattern(podName string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf("^%s%s-[a-z0-9-]{%d}$", instancePrefix, regexp.QuoteMeta(podPart(podName)), sandboxIDChars))
}

// IsPodVMName reports whether a server name has the pod-VM shape.
func IsPodVMName(name string) bool { return strings.HasPrefix(name, instancePrefix) }
