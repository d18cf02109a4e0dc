package cinder

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// KataPublisher hands a volume's block device to the Kata runtime instead of
// mounting it on the host (pkg/kata implements it). The node server consults
// it only when set, so the node has no Kubernetes API dependency otherwise.
type KataPublisher interface {
	// Wants reports whether this publish must take the direct-volume path:
	// driver, node, StorageClass and pod all opt in. A lookup failure is an
	// error (the node answers Unavailable), never a silent host mount.
	Wants(ctx context.Context, req *csi.NodePublishVolumeRequest) (bool, error)
	// Publish is called with the node's per-volume lock held, after the
	// device was resolved and verified. devicePath is the by-id path.
	Publish(ctx context.Context, req *csi.NodePublishVolumeRequest, devicePath string) (*csi.NodePublishVolumeResponse, error)
	// Holds reports whether a Kata record exists for this target path.
	Holds(targetPath string) bool
	// HoldsVolume reports whether any Kata record holds the volume.
	HoldsVolume(volumeID string) bool
	Unpublish(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error)
	Stats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error)
}

// KataHealthReporter is optionally implemented by a KataPublisher
// (pkg/kata's does). CSI 1.13 moved the volume condition out of
// NodeGetVolumeStats into NodeGetVolumeHealth; for a path a Kata record
// holds, NodeGetVolumeHealth appends these entries (a guest that never took
// the volume, a guest-reported abnormal filesystem) instead of checking a
// host mount that deliberately does not exist.
type KataHealthReporter interface {
	Health(ctx context.Context, volumeID, publishPath string) []*csi.VolumeHealth_VolumeHealthEntry
}
