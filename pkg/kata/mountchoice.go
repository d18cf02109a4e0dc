package kata

import (
	"fmt"

	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
)

// The three ways a publish learns that a volume is to be a Kata direct
// volume (Kata's direct-blk-device-assignment design names them):
//
//  1. the StorageClass parameter kataDirectVolume ("false" opts out);
//  2. the PVC annotation OptInKey (cinder.csi.openstack.org/kata-mount:
//     direct-volume|host), read once by the controller at CreateVolume and
//     carried in the volume context as VolumeContextKataMount, so the node
//     needs no PVC lookup;
//  3. the pod's RuntimeClass (annotation OptInKey, else the handler prefix).
//
// They combine as MountChoice does; docs/kata.md has the table.
const (
	// VolumeContextKataMount is the volume context key holding the PVC's
	// kata-mount annotation ("" when the PVC had none).
	VolumeContextKataMount = mountmode.VolumeContextKey
	// MountHost asks for the ordinary host mount (shared into a Kata
	// guest over virtio-fs).
	MountHost = mountmode.Host
)

// ParseMount validates a kata-mount value: "", OptInValue or MountHost.
func ParseMount(v string) error { return mountmode.Parse(v) }

// Runtime is what the pod's RuntimeClass says.
type Runtime int

const (
	// RuntimeNotKata means no RuntimeClass, or a handler that is not Kata.
	RuntimeNotKata Runtime = iota
	// RuntimeKata means the RuntimeClass annotation opts in, or the
	// handler has the Kata prefix.
	RuntimeKata
	// RuntimeOptedOut means a Kata-like RuntimeClass that says no
	// (annotation with another value, or an excluded handler such as
	// kata-remote).
	RuntimeOptedOut
)

// MountChoice combines the three ways. classOptOut is the StorageClass's
// kataDirectVolume=false; pvc the PVC's annotation; runtime the pod's
// RuntimeClass verdict. A PVC's direct-volume is a demand: when the pod's
// runtime cannot take a direct volume the publish is refused (the caller
// answers FailedPrecondition) rather than silently mounted on the host. A
// PVC's host, and the StorageClass's opt-out, always give the host mount.
// Without a PVC annotation the RuntimeClass decides, as before.
func MountChoice(classOptOut bool, pvc string, runtime Runtime) (direct bool, refusal string) {
	switch {
	case classOptOut:
		if pvc == OptInValue {
			return false, fmt.Sprintf("the PVC asks for %s=%s but the StorageClass opts out (%s=false)", OptInKey, OptInValue, VolumeContextKataDirectVolume)
		}
		return false, ""
	case pvc == MountHost:
		return false, ""
	case runtime == RuntimeKata:
		return true, ""
	case pvc == OptInValue && runtime == RuntimeOptedOut:
		return false, fmt.Sprintf("the PVC asks for %s=%s but the pod's RuntimeClass opts out of direct volumes", OptInKey, OptInValue)
	case pvc == OptInValue:
		return false, fmt.Sprintf("the PVC asks for %s=%s but the pod does not run in a Kata VM (its RuntimeClass is not Kata)", OptInKey, OptInValue)
	}
	return false, ""
}
