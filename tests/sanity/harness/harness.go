// Package harness runs the kubernetes-csi sanity suite (csi-test v5)
// against the driver in-process: the identity, controller and node
// services on a unix socket, talking to the OpenStack emulator over HTTP
// through the real cloud layer (gophercloud), with real loop devices that
// the emulator hot-plugs when a volume is attached to the local server.
//
// Each run is its own test package (defaultcloud, namedcloud, faults)
// because Ginkgo runs one suite per process.
package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
)

// EnvGate is the variable `make sanity` sets. Without it the sanity
// packages skip, so `go test ./...` (make unit) does not run the suites a
// second time.
const EnvGate = "CINDER_CSI_SANITY"

// Run configuration shared by every run.
const (
	// VolumeSize is the suite's TestVolumeSize: the smallest Cinder volume,
	// so each staged volume formats a 1 GiB sparse loop device.
	VolumeSize = 1 << 30
	// IdempotentCount repeats each idempotent call this many times.
	IdempotentCount = 3
	// AttachLimit is the node's max_volumes_per_node, set through
	// [BlockStorage] node-volume-attach-limit. The emulator's server takes
	// one more device (its root disk), as a Nova server with that many
	// free device letters would, so the limit test's extra publish is
	// refused by Nova.
	AttachLimit = 8
	// VolumeType is the StorageClass `type` parameter of every volume, one
	// of the emulator's built-in types.
	VolumeType = "ssd"
	// ModifiedVolumeType is the VolumeAttributesClass's type for the
	// ModifyVolume specs: on VolumeType's backend, so the retype needs no
	// migration.
	ModifiedVolumeType = "ssd-gold"
	// nodeID is the emulator's local server, the node under test.
	nodeID = "5a1c0e3b-7d2f-4e6a-9b8c-1d2e3f4a5b6c"
)

// Options select one run.
type Options struct {
	// CloudName, when set, adds a [Global "<name>"] section for the
	// emulator's second project and selects it through the secrets file
	// (`cloud: <name>`); the default [Global] cloud is still configured and
	// must stay untouched.
	CloudName string
	// Faults are injected while the suite runs and cleared before the
	// leak check.
	Faults emulator.Faults
}

// Require skips the test unless the gate variable is set and we are root
// with the filesystem tools the node service runs.
func Require(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvGate) == "" {
		t.Skipf("csi-sanity runs under `make sanity` (set %s=1)", EnvGate)
	}
	if os.Geteuid() != 0 {
		t.Skip("csi-sanity needs root: the node service formats and mounts loop devices")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mkfs.xfs", "blkid", "mount", "umount", "resize2fs", "xfs_growfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("csi-sanity needs %s on PATH", tool)
		}
	}
}

// Run starts the emulator and the driver and runs the sanity suite once.
func Run(t *testing.T, o Options) {
	Require(t)
	work := t.TempDir()
	devRoot := filepath.Join(work, "dev")
	sysRoot := filepath.Join(work, "sys")
	for _, d := range []string{devRoot, sysRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	seed := faultSeed(t, o.Faults)
	emu, err := emulator.Start(emulator.Options{
		DevRoot:             devRoot,
		SysRoot:             sysRoot,
		DataDir:             filepath.Join(work, "data"), // so the loop-device check below sees only ours
		Servers:             []emulator.ServerSpec{{ID: nodeID, Name: "sanity-node", AZ: "nova", Local: true}},
		MaxDevicesPerServer: AttachLimit + 1,
		Seed:                seed,
	})
	if err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	// Cleanups run last-registered first: the mount check below runs
	// before the emulator unplugs its loop devices.
	t.Cleanup(func() {
		if err := emu.Close(); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
		checkNoLoopDevices(t, work)
	})
	emu.AddVolumeType(ModifiedVolumeType, map[string]string{"volume_backend_name": "ssd"})
	if o.CloudName != "" {
		// The default cloud's project can create nothing, so any request
		// the secrets failed to route to the named cloud fails its test.
		emu.SetQuota("demo", 0, 0, 0, 0)
	}

	confPath := filepath.Join(work, "cloud.conf")
	conf := emu.CloudConf("Global", "demo")
	if o.CloudName != "" {
		conf += "\n" + emu.CloudConf(fmt.Sprintf("Global %q", o.CloudName), "second")
	}
	conf += fmt.Sprintf("\n[BlockStorage]\nnode-volume-attach-limit = %d\n\n[Metadata]\nsearch-order = metadataService\n", AttachLimit)
	sanitykit.WriteFile(t, confPath, conf)
	secretsPath := filepath.Join(work, "secrets.yaml")
	sanitykit.WriteFile(t, secretsPath, secretsYAML(o.CloudName))

	ctx, cancel := context.WithCancel(context.Background())
	endpoint := "unix://" + filepath.Join(work, "csi.sock")
	srv := startDriver(ctx, t, emu, confPath, devRoot, sysRoot, endpoint)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CSI server: %v", err)
		}
	})
	t.Cleanup(func() { checkNoMounts(t, work) })

	if faulty(o.Faults) {
		emu.SetFaults(o.Faults)
		t.Logf("injecting faults: error rate %.3f (500 and 503 alike), 429 rate %.3f, seed %d", o.Faults.ErrorRate, o.Faults.RateLimitRate, seed)
	}

	cfg := testConfig(endpoint, work, secretsPath)
	// Plain output: CI logs and hack/sanity-summary.sh read it.
	if f := flag.Lookup("ginkgo.no-color"); f != nil && !sanitykit.IsSet("ginkgo.no-color") {
		_ = f.Value.Set("true")
	}
	sanity.Test(t, cfg)

	// The suite has cleaned up after itself; nothing may remain in the
	// cloud. Faults stop first so the check reads a quiet cloud.
	emu.SetFaults(emulator.Faults{})
	checkCloudEmpty(t, emu)
	t.Logf("OpenStack API calls: %d", emu.TotalCalls())
}

func startDriver(ctx context.Context, t *testing.T, emu *emulator.Emulator, confPath, devRoot, sysRoot, endpoint string) *server.Server {
	t.Helper()
	cfg, _, err := config.Load(confPath)
	if err != nil {
		t.Fatalf("loading %s: %v", confPath, err)
	}
	clouds, err := openstack.NewClouds(ctx, []string{confPath}, openstack.Options{UserAgent: []string{"csi-sanity"}})
	if err != nil {
		t.Fatalf("building clouds: %v", err)
	}
	co := cinder.DefaultControllerOptions()
	co.Cluster = "sanity"
	cs, err := cinder.NewControllerServer(clouds, co)
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	md, err := metadata.New(metadata.Options{
		SearchOrder: cfg.Metadata.SearchOrder,
		URL:         emu.URL() + "/openstack/latest/meta_data.json",
		DevRoot:     devRoot,
	})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	ns, err := cinder.NewNodeServer(cinder.NodeOptions{
		DriverName:            cinder.DefaultDriverName,
		Metadata:              md,
		WithTopology:          true,
		NodeVolumeAttachLimit: int64(cfg.BlockStorage.NodeVolumeAttachLimit),
		DevRoot:               devRoot,
		SysRoot:               sysRoot,
		// csi-sanity's mount and staging dirs are <work>/target and
		// <work>/staging; devRoot is <work>/dev.
		KubeletRoot: filepath.Dir(devRoot),
	})
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	srv, err := server.New(server.Options{
		Endpoint: endpoint,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{
			DriverName:              cinder.DefaultDriverName,
			Version:                 "sanity",
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
	if _, err := srv.Listen(); err != nil {
		t.Fatalf("CSI server: %v", err)
	}
	return srv
}

// secretsYAML fills every secret the suite sends. The named run selects
// its cloud with the `cloud` key; the default run sends the key empty,
// which selects the [Global] section, as a Secret without it would.
func secretsYAML(cloud string) string {
	var b strings.Builder
	for _, field := range []string{
		"CreateVolumeSecret", "DeleteVolumeSecret", "ControllerPublishVolumeSecret",
		"ControllerUnpublishVolumeSecret", "ControllerValidateVolumeCapabilitiesSecret",
		"NodeStageVolumeSecret", "NodePublishVolumeSecret", "CreateSnapshotSecret",
		"DeleteSnapshotSecret", "ControllerExpandVolumeSecret", "ControllerModifyVolumeSecret",
		"ListSnapshotsSecret", "GetSnapshotSecret",
	} {
		fmt.Fprintf(&b, "%s:\n  %s: %q\n", field, cinder.SecretCloudKey, cloud)
	}
	return b.String()
}

// faultSeed returns the emulator's fault seed: SANITY_FAULT_SEED when set,
// so a failing fault run can be replayed, otherwise a fresh one.
func faultSeed(t *testing.T, f emulator.Faults) int64 {
	if s := os.Getenv("SANITY_FAULT_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SANITY_FAULT_SEED=%q: %v", s, err)
		}
		return n
	}
	if !faulty(f) {
		return 1
	}
	return time.Now().UnixNano()
}

func faulty(f emulator.Faults) bool { return f.ErrorRate > 0 || f.RateLimitRate > 0 }

// checkCloudEmpty is the leak check: every volume, snapshot, backup and
// attachment the suite made must be gone, in every project.
func checkCloudEmpty(t *testing.T, emu *emulator.Emulator) {
	t.Helper()
	for _, v := range emu.Volumes() {
		t.Errorf("leaked volume %s %q (status %s, project %s)", v.ID, v.Name, v.Status, v.ProjectID)
	}
	for _, s := range emu.Snapshots() {
		t.Errorf("leaked snapshot %s %q (status %s, volume %s)", s.ID, s.Name, s.Status, s.VolumeID)
	}
	for _, b := range emu.Backups() {
		t.Errorf("leaked backup %s %q (status %s)", b.ID, b.Name, b.Status)
	}
	for _, a := range emu.Attachments() {
		t.Errorf("leaked attachment %s of volume %s to server %s (status %s)", a.ID, a.VolumeID, a.ServerID, a.Status)
	}
	for _, id := range emu.GroupIDs() {
		t.Errorf("leaked group %s", id)
	}
	for _, id := range emu.GroupSnapshotIDs() {
		t.Errorf("leaked group snapshot %s", id)
	}
}

func checkNoMounts(t *testing.T, under string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("reading mountinfo: %v", err)
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], under+"/") {
			t.Errorf("mount left behind: %s", fields[4])
			_ = exec.Command("umount", "-l", fields[4]).Run()
		}
	}
}

func checkNoLoopDevices(t *testing.T, under string) {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, under+"/") {
			t.Errorf("loop device left behind: %s", strings.TrimSpace(line))
		}
	}
}

// uuidGen makes volume and node ids in the form Cinder and Nova use, so
// the "does not exist" tests reach the cloud and get its 404 instead of
// stopping at an id the driver could reject by shape.
type uuidGen struct{}

func (uuidGen) GenerateUniqueValidVolumeID() string { return sanitykit.NewUUID() }
func (uuidGen) GenerateInvalidVolumeID() string     { return "not-a-cinder-volume-id" }
func (uuidGen) GenerateUniqueValidNodeID() string   { return sanitykit.NewUUID() }
func (uuidGen) GenerateInvalidNodeID() string       { return "not-a-nova-server-id" }

// testConfig is csi-sanity's configuration for the driver at endpoint,
// with its paths under work.
func testConfig(endpoint, work, secretsPath string) sanity.TestConfig {
	cfg := sanity.NewTestConfig()
	cfg.Address = endpoint
	cfg.TargetPath = filepath.Join(work, "target")
	cfg.StagingPath = filepath.Join(work, "staging")
	cfg.SecretsFile = secretsPath
	cfg.TestVolumeSize = VolumeSize
	cfg.TestVolumeExpandSize = 2 * VolumeSize
	cfg.IdempotentCount = IdempotentCount
	cfg.TestVolumeParameters = map[string]string{"type": VolumeType}
	cfg.TestVolumeMutableParameters = map[string]string{"type": ModifiedVolumeType}
	cfg.TestSnapshotParameters = map[string]string{"type": "snapshot", "force-create": "false"}
	cfg.TestNodeVolumeAttachLimit = true
	cfg.IDGen = uuidGen{}
	return cfg
}
