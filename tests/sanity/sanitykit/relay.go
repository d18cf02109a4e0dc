package sanitykit

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// NodeRelay serves every RPC of a remote node's service (a plugin in a
// guest) beside an in-process identity and controller: csi-sanity asks the
// identity at its node address whether there is a controller service (and
// so whether to ControllerPublish), and a node plugin alone rightly says no.
func NodeRelay(c csi.NodeClient) csi.NodeServer { return nodeRelay{c: c} }

type nodeRelay struct {
	csi.UnimplementedNodeServer
	c csi.NodeClient
}

func (r nodeRelay) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	return r.c.NodeStageVolume(ctx, req)
}

func (r nodeRelay) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	return r.c.NodeUnstageVolume(ctx, req)
}

func (r nodeRelay) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	return r.c.NodePublishVolume(ctx, req)
}

func (r nodeRelay) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	return r.c.NodeUnpublishVolume(ctx, req)
}

func (r nodeRelay) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	return r.c.NodeGetVolumeStats(ctx, req)
}

func (r nodeRelay) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	return r.c.NodeExpandVolume(ctx, req)
}

func (r nodeRelay) NodeGetCapabilities(ctx context.Context, req *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return r.c.NodeGetCapabilities(ctx, req)
}

func (r nodeRelay) NodeGetInfo(ctx context.Context, req *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return r.c.NodeGetInfo(ctx, req)
}

func (r nodeRelay) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	return r.c.NodeGetVolumeHealth(ctx, req)
}

func (r nodeRelay) NodeGetStorageHealth(ctx context.Context, req *csi.NodeGetStorageHealthRequest) (*csi.NodeGetStorageHealthResponse, error) {
	return r.c.NodeGetStorageHealth(ctx, req)
}
