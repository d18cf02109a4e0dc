package rig

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Driver is our plugin (identity, controller and node services) serving
// on a unix socket, its controller talking to the rig's Cinder and Nova,
// its node acting as node1: devices under the rig's dev root, metadata
// from the rig's files over HTTP.
type Driver struct {
	Endpoint   string // unix://...
	Conn       *grpc.ClientConn
	Work       string
	CloudConf  string
	MetadataAt string
}

// StartDriver starts the plugin in-process for the test's lifetime.
// extraConf is appended to the rig's cloud.conf; obs, when given, sees
// every OpenStack request the controller makes.
func StartDriver(t testing.TB, env *Env, cluster, extraConf string, obs ...openstack.Observer) *Driver {
	t.Helper()
	work := t.TempDir()
	base, err := os.ReadFile(env.CloudConf)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(work, "cloud.conf")
	conf := string(base) + "\n[Metadata]\nsearch-order = metadataService\n" + extraConf
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Driver{Work: work, CloudConf: confPath, Endpoint: "unix://" + filepath.Join(work, "csi.sock")}
	d.MetadataAt = ServeMetadata(t, filepath.Join(env.State, "metadata", env.Node1))

	ctx, cancel := context.WithCancel(context.Background())
	srv := newDriverServer(ctx, t, env, d, cluster, obs)
	if _, err := srv.Listen(); err != nil {
		t.Fatalf("CSI server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(d.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	d.Conn = conn
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("CSI server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("CSI server did not stop")
		}
	})
	return d
}

// newDriverServer builds the controller, node and identity services over
// d's cloud.conf and the rig's devices, in one CSI server on d.Endpoint.
func newDriverServer(ctx context.Context, t testing.TB, env *Env, d *Driver, cluster string, obs []openstack.Observer) *server.Server {
	t.Helper()
	cfg, _, err := config.Load(d.CloudConf)
	if err != nil {
		t.Fatalf("loading %s: %v", d.CloudConf, err)
	}
	oo := openstack.Options{UserAgent: []string{"cinder-csi-e2e"}}
	if len(obs) > 0 {
		oo.Observer = obs[0]
	}
	clouds, err := openstack.NewClouds(ctx, []string{d.CloudConf}, oo)
	if err != nil {
		t.Fatalf("building clouds: %v", err)
	}
	co := cinder.DefaultControllerOptions()
	co.Cluster = cluster
	cs, err := cinder.NewControllerServer(clouds, co)
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	md, err := metadata.New(metadata.Options{
		SearchOrder: cfg.Metadata.SearchOrder,
		URL:         d.MetadataAt,
		DevRoot:     env.DevRoot,
	})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	ns, err := cinder.NewNodeServer(cinder.NodeOptions{
		DriverName:            cinder.DefaultDriverName,
		Metadata:              md,
		WithTopology:          true,
		NodeVolumeAttachLimit: int64(cfg.BlockStorage.NodeVolumeAttachLimit),
		DevRoot:               env.DevRoot,
		SysRoot:               "/sys",
		KubeletRoot:           d.Work, // the suites stage and publish under Work
	})
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	srv, err := server.New(server.Options{
		Endpoint: d.Endpoint,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{
			DriverName:              cinder.DefaultDriverName,
			Version:                 "e2e-openstack",
			WithTopology:            true,
			ProvidesController:      true,
			ProvidesGroupController: true,
		}),
		Controller:      cs,
		GroupController: cinder.NewGroupControllerServer(cs),
		Node:            ns,
		SlowThreshold:   -1,
	})
	if err != nil {
		t.Fatalf("CSI server: %v", err)
	}
	return srv
}
