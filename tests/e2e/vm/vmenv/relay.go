package vmenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
)

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
		Node:          sanitykit.NodeRelay(e.Node),
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
