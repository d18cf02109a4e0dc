// Package manilaharness runs the kubernetes-csi sanity suite (csi-test v5)
// against the Manila driver in-process: identity, controller and node on a
// unix socket, the controller talking to the emulator's Manila over HTTP
// through the real cloud layer, the node mounting each share by
// bind-mounting the emulator's per-share directory (this host has no
// kernel NFS or CephFS client). One package per protocol (manilanfs,
// manilacephfs), as Ginkgo runs one suite per process.
package manilaharness

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
)

// EnvGate is the variable `make sanity` sets (shared with the Cinder runs).
const EnvGate = "CINDER_CSI_SANITY"

const (
	// VolumeSize is the suite's TestVolumeSize: Manila's smallest share.
	VolumeSize = 1 << 30
	// IdempotentCount repeats each idempotent call this many times.
	IdempotentCount = 3
	// NodeName is the node under test; its id carries NodeAddress, which
	// the controller grants NFS access to.
	NodeName = "sanity-node"
	// NodeAddress is the node's address in its id.
	NodeAddress = "127.0.0.1"
	clusterID   = "sanity"
)

// Options select one run.
type Options struct {
	// Protocol is NFS or CEPHFS; ShareType one of the emulator's types
	// serving it (cephfsnfstype, cephfstype).
	Protocol  string
	ShareType string
	// Parameters are further StorageClass parameters (a remote node's
	// nfs-mountOptions, nfsVersion).
	Parameters map[string]string
}

// RemoteNode is a node service the run does not start: the plugin in a
// vm-rig guest, mounting for real. The suite reaches its node service
// through the run's endpoint, beside the in-process identity and
// controller (sanitykit.NodeRelay).
type RemoteNode struct {
	// Client is the node plugin's node service.
	Client csi.NodeClient
	// Paths points the suite's target and staging paths into the node's
	// file system and makes, removes and checks them there
	// (sanitykit.GuestPaths).
	Paths func(cfg *sanity.TestConfig)
	// MountsLeft lists the node's mounts under its kubelet root after
	// the run (none may remain).
	MountsLeft func(t *testing.T) []string
}

// Require skips the test unless the gate variable is set and the run can
// bind-mount (root, in the private mount namespace TestMain made).
func Require(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvGate) == "" {
		t.Skipf("csi-sanity runs under `make sanity` (set %s=1)", EnvGate)
	}
	manilanodetest.RequireMountNamespace(t)
}

// Target is the cloud a run's shares live in.
type Target struct {
	// ConfPath is the cloud.conf the controller reads ([Global]).
	ConfPath string
	// ShareDir gives the directory the node's test mounter binds for a
	// share (the emulator's per-share directory).
	ShareDir func(shareID string) (string, bool)
	// ClusterID scopes the run's shares (--cluster-id) and the leak check.
	ClusterID string
	// ExtraLeakCheck runs after the share and snapshot checks (the rig's
	// cephx users).
	ExtraLeakCheck func(t *testing.T)
	// IdempotentCount defaults to IdempotentCount.
	IdempotentCount int
	// Node, when set, is the node under test instead of the in-process
	// one (ShareDir is then unused).
	Node *RemoteNode
	// Mounter, when set, is the in-process node's mounter instead of
	// binding ShareDir (manilanode.NewHostMounter: ceph-fuse for real).
	Mounter manilanode.Mounter
}

// Run starts the emulator and the driver and runs the sanity suite once.
func Run(t *testing.T, o Options) {
	Require(t)
	work := t.TempDir()
	emu, err := emulator.Start(emulator.Options{DataDir: filepath.Join(work, "data")})
	if err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := emu.Close(); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
	})
	confPath := filepath.Join(work, "cloud.conf")
	sanitykit.WriteFile(t, confPath, emu.CloudConf("Global", "demo"))
	RunOn(t, o, Target{ConfPath: confPath, ShareDir: emu.ShareDir, ClusterID: clusterID}, work)
	t.Logf("OpenStack API calls: %d", emu.TotalCalls())
}

// RunOn runs the suite against target's cloud, with work as the kubelet
// root of the node under test.
func RunOn(t *testing.T, o Options, target Target, work string) {
	ctx, cancel := context.WithCancel(context.Background())
	clouds, err := openstack.NewShareClouds(ctx, []string{target.ConfPath}, openstack.Options{UserAgent: []string{"csi-sanity"}})
	if err != nil {
		t.Fatalf("building clouds: %v", err)
	}
	before := snapshotIDs(ctx, t, clouds)
	endpoint := "unix://" + filepath.Join(work, "csi.sock")
	srv := startDriver(t, clouds, o, target, work, endpoint)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CSI server: %v", err)
		}
	})
	t.Cleanup(func() {
		mountsLeft := func(t *testing.T) []string { return manilanodetest.MountsUnder(t, work) }
		if target.Node != nil {
			mountsLeft = target.Node.MountsLeft
		}
		if left := mountsLeft(t); len(left) > 0 {
			t.Errorf("mounts left behind: %v", left)
		}
	})

	cfg := sanity.NewTestConfig()
	cfg.Address = endpoint
	cfg.TargetPath = filepath.Join(work, "target")
	cfg.StagingPath = filepath.Join(work, "staging")
	if target.Node != nil {
		target.Node.Paths(&cfg)
	}
	cfg.TestVolumeSize = VolumeSize
	cfg.TestVolumeExpandSize = 2 * VolumeSize
	cfg.IdempotentCount = IdempotentCount
	if target.IdempotentCount > 0 {
		cfg.IdempotentCount = target.IdempotentCount
	}
	cfg.TestVolumeParameters = map[string]string{"type": o.ShareType, "protocol": o.Protocol}
	for k, v := range o.Parameters {
		cfg.TestVolumeParameters[k] = v
	}
	cfg.IDGen = idGen{}
	if f := flag.Lookup("ginkgo.no-color"); f != nil && !sanitykit.IsSet("ginkgo.no-color") {
		_ = f.Value.Set("true")
	}
	sanity.Test(t, cfg)

	checkCloudEmpty(ctx, t, clouds, target.ClusterID, before)
	if target.ExtraLeakCheck != nil {
		target.ExtraLeakCheck(t)
	}
}

func startDriver(t *testing.T, clouds openstack.ShareClouds, o Options, target Target, work, endpoint string) *server.Server {
	t.Helper()
	co := manila.DefaultControllerOptions()
	co.ClusterID = target.ClusterID
	co.DefaultProtocol = o.Protocol
	// No Kubernetes here: the key travels in the publish context, and the
	// node directory is the one node under test.
	co.KeyDelivery = manila.DeliveryPublishContext
	co.Keys = nil
	co.Nodes = oneNode(NodeName)
	cs, err := manila.NewControllerServer(clouds, co)
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	var ns csi.NodeServer
	mounter := target.Mounter
	if mounter == nil {
		mounter = manilanodetest.NewDirMounter(target.ShareDir)
	}
	if target.Node != nil {
		ns = sanitykit.NodeRelay(target.Node.Client)
	} else {
		if ns, err = manilanode.NewNodeServer(manilanode.NodeOptions{
			DriverName:      manila.DefaultDriverName,
			NodeName:        NodeName,
			NodeAddresses:   []string{NodeAddress},
			KubeletRootDir:  work,
			StateDir:        filepath.Join(work, "state"),
			DefaultProtocol: o.Protocol,
			Mounter:         mounter,
		}); err != nil {
			t.Fatalf("node: %v", err)
		}
	}
	srv, err := server.New(server.Options{
		Endpoint: endpoint,
		Identity: manila.NewIdentityServer(manila.IdentityOptions{
			DriverName: manila.DefaultDriverName, Version: "sanity", ProvidesController: true,
		}),
		Controller:    cs,
		Node:          ns,
		SlowThreshold: -1,
	})
	if err != nil {
		t.Fatalf("CSI server: %v", err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatalf("CSI server: %v", err)
	}
	return srv
}

// checkCloudEmpty is the leak check, through the same cloud layer: no share
// of the run's cluster and no snapshot the run made may remain (access
// rules live on shares, so none can remain either).
func checkCloudEmpty(ctx context.Context, t *testing.T, clouds openstack.ShareClouds, cluster string, before map[string]bool) {
	t.Helper()
	c, err := clouds.ForSecrets(ctx, nil)
	if err != nil {
		t.Fatalf("leak check: %v", err)
	}
	shares, err := c.ListShares(ctx, openstack.ShareListOpts{Metadata: map[string]string{openstack.MetaManilaCluster: cluster}})
	if err != nil {
		t.Fatalf("leak check: %v", err)
	}
	rules := 0
	for _, s := range shares.Items {
		t.Errorf("leaked share %s %q (status %s)", s.ID, s.Name, s.Status)
		if r, err := c.ListAccessRules(ctx, s.ID); err == nil {
			rules += len(r)
		}
	}
	snaps := 0
	for id := range snapshotIDs(ctx, t, clouds) {
		if !before[id] {
			snaps++
			t.Errorf("leaked snapshot %s", id)
		}
	}
	t.Logf("leak check: %d shares, %d snapshots, %d access rules left", len(shares.Items), snaps, rules)
}

// snapshotIDs lists the project's share snapshots.
func snapshotIDs(ctx context.Context, t *testing.T, clouds openstack.ShareClouds) map[string]bool {
	t.Helper()
	c, err := clouds.ForSecrets(ctx, nil)
	if err != nil {
		t.Fatalf("listing snapshots: %v", err)
	}
	ids := map[string]bool{}
	for marker := ""; ; {
		page, err := c.ListShareSnapshots(ctx, openstack.ShareListOpts{Marker: marker})
		if err != nil {
			t.Fatalf("listing snapshots: %v", err)
		}
		for _, s := range page.Items {
			ids[s.ID] = true
		}
		if marker = page.NextMarker; marker == "" {
			return ids
		}
	}
}

type oneNode string

func (n oneNode) NodeExists(_ context.Context, name string) (bool, error) {
	return name == string(n), nil
}

// idGen makes share ids in Manila's form, so "does not exist" reaches the
// cloud and gets its 404, and node ids in the node service's form for a
// node the directory does not know.
type idGen struct{}

func (idGen) GenerateUniqueValidVolumeID() string { return sanitykit.NewUUID() }
func (idGen) GenerateInvalidVolumeID() string     { return "not-a-manila-share-id" }
func (idGen) GenerateUniqueValidNodeID() string {
	return "ghost-" + sanitykit.NewUUID()[:8] + "/10.255.0.1"
}
func (idGen) GenerateInvalidNodeID() string { return "/not-a-node-id" }
