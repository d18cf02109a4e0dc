// Package cinder holds the CSI Identity, Controller and Node servers of the
// Cinder driver. CSI semantics live here; cloud and host mechanisms live in
// pkg/openstack, pkg/device, pkg/metadata and friends.
package cinder

// Names shared by the controller and node halves and by existing
// PersistentVolumes. They are compatible with the reference plugin, so an
// operator can swap images without touching PVs.
const (
	// DefaultDriverName is the CSI driver name (overridable by a flag).
	DefaultDriverName = "cinder.csi.openstack.org"

	// TopologyKey is the node label and topology segment for the AZ.
	TopologyKey = "topology.cinder.csi.openstack.org/zone"

	// VolumeContextResizeRequired is set by CreateVolume when a restore or
	// clone is larger than its source, so NodeStage grows the filesystem.
	VolumeContextResizeRequired = "cinder.csi.openstack.org/resizeRequired"

	// PublishContextDevicePath carries the device Nova reported. The node
	// uses it only as a last hint, cross-checked by serial.
	PublishContextDevicePath = "DevicePath"

	// SecretCloudKey selects a [Global "<name>"] cloud in request secrets.
	SecretCloudKey = "cloud"
)
