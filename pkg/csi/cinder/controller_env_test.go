package cinder

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// Test fixtures for the controller: an emulated OpenStack reached through
// the real cloud layer (gophercloud over HTTP), never a fake Cloud.

const (
	nodeA     = "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01"
	nodeB     = "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e02"
	nodeGone  = "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5eff"
	testAZ    = "nova"
	otherAZ   = "az2"
	multiType = "multi"
	ssdType   = "ssd"
)

// testTimeout bounds every RPC of a test; it is a deadline for the waits,
// not an assertion on speed.
const testTimeout = 60 * time.Second

type controllerEnv struct {
	t   *testing.T
	emu *emulator.Emulator
	cs  *ControllerServer
	ops *opLog // the cloud layer's requests in order, reset by warm
}

type envOption func(*emulator.Options, *ControllerOptions, *[]string)

func withEmulator(f func(*emulator.Options)) envOption {
	return func(o *emulator.Options, _ *ControllerOptions, _ *[]string) { f(o) }
}

func withController(f func(*ControllerOptions)) envOption {
	return func(_ *emulator.Options, c *ControllerOptions, _ *[]string) { f(c) }
}

// withSecondCloud adds [Global "second"] for the emulator's second project.
func withSecondCloud() envOption {
	return func(_ *emulator.Options, _ *ControllerOptions, s *[]string) { *s = append(*s, "second") }
}

func newControllerEnv(t *testing.T, opts ...envOption) *controllerEnv {
	t.Helper()
	eo := emulator.Options{
		Servers: []emulator.ServerSpec{
			{ID: nodeA, Name: "node-a", AZ: testAZ},
			{ID: nodeB, Name: "node-b", AZ: testAZ},
		},
		AvailabilityZones: []string{testAZ, otherAZ},
	}
	co := DefaultControllerOptions()
	co.Cluster = "test-cluster"
	co.SnapshotReadyWait = 0
	var extraClouds []string
	for _, o := range opts {
		o(&eo, &co, &extraClouds)
	}
	emu, err := emulator.Start(eo)
	if err != nil {
		t.Fatalf("starting emulator: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	emu.AddVolumeType(ssdType, nil)
	emu.AddVolumeType(multiType, map[string]string{"multiattach": "<is> True"})

	conf := emu.CloudConf("Global", "demo")
	for _, name := range extraClouds {
		conf += emu.CloudConf(fmt.Sprintf("Global %q", name), name)
	}
	cfg, _, err := config.Parse("cloud.conf", []byte(conf))
	if err != nil {
		t.Fatalf("parsing emulator cloud.conf: %v", err)
	}
	ops := &opLog{}
	clouds, err := openstack.NewCloudsFromConfig(cfg, openstack.Options{Observer: ops})
	if err != nil {
		t.Fatalf("building clouds: %v", err)
	}
	cs, err := NewControllerServer(clouds, co)
	if err != nil {
		t.Fatalf("NewControllerServer: %v", err)
	}
	return &controllerEnv{t: t, emu: emu, cs: cs, ops: ops}
}

func (e *controllerEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	e.t.Cleanup(cancel)
	return ctx
}

// shortCtx is for tests that need the deadline to pass during a wait.
func (e *controllerEnv) shortCtx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// calls returns the API calls made since the last reset, without Keystone
// (token issuance depends on cache state, not on the operation).
func (e *controllerEnv) calls() map[string]int64 {
	out := map[string]int64{}
	for k, v := range e.emu.Counters() {
		if strings.Contains(k, "/identity/") || strings.HasPrefix(strings.SplitN(k, " ", 2)[1], "/v3/auth") {
			continue
		}
		out[k] = v
	}
	return out
}

func total(calls map[string]int64) int64 {
	var n int64
	for _, v := range calls {
		n += v
	}
	return n
}

// distinct counts API calls, each GET of one resource by id at most once:
// the repeats are polls, whose number depends on how fast the emulator
// finishes, so tests assert this figure and log the raw one.
func distinct(calls map[string]int64) int64 {
	var n int64
	for k, v := range calls {
		if strings.HasPrefix(k, "GET ") && strings.HasSuffix(k, "_id}") && v > 1 {
			v = 1
		}
		n += v
	}
	return n
}

// mutating counts POST, PUT, PATCH and DELETE calls.
func mutating(calls map[string]int64) int64 {
	var n int64
	for k, v := range calls {
		if !strings.HasPrefix(k, "GET ") && !strings.HasPrefix(k, "HEAD ") {
			n += v
		}
	}
	return n
}

func formatCalls(calls map[string]int64) string {
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d; ", k, calls[k])
	}
	return b.String()
}

// warm makes one cheap call so that later counts exclude authentication
// and version discovery.
func (e *controllerEnv) warm() {
	e.t.Helper()
	_, err := e.cs.ListVolumes(e.ctx(), &csi.ListVolumesRequest{MaxEntries: 1})
	if err != nil {
		e.t.Fatalf("warm-up ListVolumes: %v", err)
	}
	e.emu.ResetCounters()
	e.ops.reset()
}

func ctCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v, want %v (err: %v)", got, want, err)
	}
}

func ctMount(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func ctBlock(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var rwo = ctMount(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

func createReq(name string, sizeGiB int64) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: sizeGiB * gib},
		VolumeCapabilities: []*csi.VolumeCapability{rwo},
	}
}

// mustCreate creates a volume and returns its id.
func (e *controllerEnv) mustCreate(name string, sizeGiB int64) string {
	e.t.Helper()
	resp, err := e.cs.CreateVolume(e.ctx(), createReq(name, sizeGiB))
	if err != nil {
		e.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return resp.GetVolume().GetVolumeId()
}

func (e *controllerEnv) mustPublish(volID, node string) *csi.ControllerPublishVolumeResponse {
	e.t.Helper()
	resp, err := e.cs.ControllerPublishVolume(e.ctx(), &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: node, VolumeCapability: rwo})
	if err != nil {
		e.t.Fatalf("ControllerPublishVolume %s on %s: %v", volID, node, err)
	}
	return resp
}

// mustSnapshot creates a snapshot and polls CreateSnapshot (as the
// snapshotter does) until it is ready.
func (e *controllerEnv) mustSnapshot(name, volID string, parameters map[string]string) *csi.Snapshot {
	e.t.Helper()
	ctx := e.ctx()
	for {
		resp, err := e.cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: volID, Parameters: parameters})
		if err != nil && status.Code(err) != codes.Aborted {
			e.t.Fatalf("CreateSnapshot %s: %v", name, err)
		}
		if err == nil && resp.GetSnapshot().GetReadyToUse() {
			return resp.GetSnapshot()
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("snapshot %s not ready before the test deadline", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitVolumeGone waits, through the cloud layer's shared poller and within
// the test deadline, until Cinder no longer knows the volume.
func (e *controllerEnv) waitVolumeGone(id string) {
	e.t.Helper()
	c, err := e.cs.cloudFor(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.WaitVolumeGone(e.ctx(), id); err != nil {
		e.t.Fatalf("volume %s not deleted before the test deadline: %v", id, err)
	}
}

func (e *controllerEnv) volume(id string) (emulator.VolumeView, bool) {
	for _, v := range e.emu.Volumes() {
		if v.ID == id {
			return v, true
		}
	}
	return emulator.VolumeView{}, false
}

func (e *controllerEnv) volumesNamed(name string) []emulator.VolumeView {
	var out []emulator.VolumeView
	for _, v := range e.emu.Volumes() {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}
