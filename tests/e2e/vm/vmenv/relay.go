package vmenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
)

// nodeRelay passes every Node RPC to the plugin in the guest unchanged.
type nodeRelay struct {
	csi.UnimplementedNodeServer
	c csi.NodeClient
}

func (r nodeRelay) NodeStageVolume(ctx context.Context, q *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	return r.c.NodeStageVolume(ctx, q)
}

func (r nodeRelay) NodeUnstageVolume(ctx context.Context, q *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	return r.c.NodeUnstageVolume(ctx, q)
}

func (r nodeRelay) NodePublishVolume(ctx context.Context, q *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	return r.c.NodePublishVolume(ctx, q)
}

func (r nodeRelay) NodeUnpublishVolume(ctx context.Context, q *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	return r.c.NodeUnpublishVolume(ctx, q)
}

func (r nodeRelay) NodeGetVolumeStats(ctx context.Context, q *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	return r.c.NodeGetVolumeStats(ctx, q)
}

func (r nodeRelay) NodeExpandVolume(ctx context.Context, q *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	return r.c.NodeExpandVolume(ctx, q)
}

func (r nodeRelay) NodeGetCapabilities(ctx context.Context, q *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return r.c.NodeGetCapabilities(ctx, q)
}

func (r nodeRelay) NodeGetInfo(ctx context.Context, q *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return r.c.NodeGetInfo(ctx, q)
}

// DriverSocket serves, on the host, the driver as a whole deployment shows
// itself: the identity of a driver with a controller service (the host
// controller's) and the node service relayed to the guest's plugin. A
// client that reads the plugin capabilities from the node endpoint before
// calling ControllerPublish (csi-sanity does) needs it: the guest's
// node-only plugin rightly advertises no controller.
func (e *Env) DriverSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(filepath.Dir(e.NodeSock), "driver.sock")
	srv, err := server.New(server.Options{
		Endpoint: "unix://" + sock,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{DriverName: cinder.DefaultDriverName, Version: "e2e-vm",
			WithTopology: true, ProvidesController: true}),
		Node:          nodeRelay{c: e.Node},
		SlowThreshold: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.serve(t, srv)
	return sock
}

// serve runs srv until the test ends.
func (e *Env) serve(t *testing.T, srv *server.Server) {
	t.Helper()
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CSI server: %v", err)
		}
	})
}

func (r nodeRelay) NodeGetVolumeHealth(ctx context.Context, q *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	return r.c.NodeGetVolumeHealth(ctx, q)
}

func (r nodeRelay) NodeGetStorageHealth(ctx context.Context, q *csi.NodeGetStorageHealthRequest) (*csi.NodeGetStorageHealthResponse, error) {
	return r.c.NodeGetStorageHealth(ctx, q)
}
