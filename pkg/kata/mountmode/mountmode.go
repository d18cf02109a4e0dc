// Package mountmode holds the kata-mount annotation's names and checks,
// shared by the controller (which reads the PVC annotation once, at
// CreateVolume) and the node's Kata publisher (which combines it with the
// StorageClass and the RuntimeClass, kata.MountChoice). It imports nothing
// of ours, so both sides can use it.
package mountmode

import (
	"fmt"
	"strconv"
)

const (
	// Key is the annotation, on a PVC or a RuntimeClass.
	Key = "cinder.csi.openstack.org/kata-mount"
	// DirectVolume asks for a Kata direct-assigned volume.
	DirectVolume = "direct-volume"
	// Host asks for the ordinary host mount (shared into a Kata guest over
	// virtio-fs).
	Host = "host"
	// VolumeContextKey carries the PVC's annotation in the volume context
	// ("" when the PVC had none).
	VolumeContextKey = "kataMount"
	// ClassParameter is the StorageClass parameter whose "false" opts out.
	ClassParameter = "kataDirectVolume"
)

// Parse validates a kata-mount value: "", DirectVolume or Host.
func Parse(v string) error {
	switch v {
	case "", DirectVolume, Host:
		return nil
	}
	return fmt.Errorf("%s=%q: must be %s or %s", Key, v, DirectVolume, Host)
}

// CheckClassAndPVC is the controller's check at CreateVolume of the two
// inputs it knows: a PVC demanding a direct volume from a StorageClass that
// opted out can never be satisfied, so it is refused before anything is
// created. classValue is the ClassParameter value ("" when unset).
func CheckClassAndPVC(classValue, pvcValue string) error {
	if err := Parse(pvcValue); err != nil {
		return err
	}
	if classValue == "" || pvcValue != DirectVolume {
		return nil
	}
	if b, err := strconv.ParseBool(classValue); err == nil && !b {
		return fmt.Errorf("PVC annotation %s=%s conflicts with StorageClass parameter %s=false", Key, DirectVolume, ClassParameter)
	}
	return nil
}
