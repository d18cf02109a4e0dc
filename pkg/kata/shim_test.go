package kata

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// statsEnv holds a record whose device is a 1 MiB regular file (the
// fallback reads its size the way it reads a block device's), so the stats
// paths need neither root nor a loop device.
type statsEnv struct {
	p        *Publisher
	target   string
	device   string
	sockDirs []string
}

func newStatsEnv(t *testing.T, deviceName string) *statsEnv {
	t.Helper()
	sock := shortTempDir(t)
	e := &statsEnv{
		target:   "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount",
		device:   filepath.Join(t.TempDir(), deviceName),
		sockDirs: []string{filepath.Join(sock, "vc"), filepath.Join(sock, "rs")},
	}
	if err := os.WriteFile(e.device, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), Options{RecordRoot: t.TempDir(), ShimSocketDirs: e.sockDirs})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	mi := &MountInfo{VolumeType: VolumeTypeDirect, Device: e.device, FsType: "ext4",
		Metadata: map[string]string{MetaVolumeID: testVolumeID}}
	if err := p.store.Write(e.target, mi); err != nil {
		t.Fatal(err)
	}
	return e
}

// recordSandbox does what the Go runtime's RecordSandboxID does.
func (e *statsEnv) recordSandbox(t *testing.T, id string) {
	t.Helper()
	dir, _ := e.p.store.Dir(e.target)
	if err := os.WriteFile(filepath.Join(dir, id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *statsEnv) stats(t *testing.T) *csi.NodeGetVolumeStatsResponse {
	t.Helper()
	resp, err := e.p.Stats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: testVolumeID, VolumePath: e.target})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (e *statsEnv) health() []*csi.VolumeHealth_VolumeHealthEntry {
	return e.p.Health(context.Background(), testVolumeID, e.target)
}

// guestBody is what the Go shim returns: the agent's protobuf struct
// through encoding/json, abnormal=false omitted.
const guestBody = `{"usage":[{"available":700,"total":1000,"used":300,"unit":1},{"available":90,"total":100,"used":10,"unit":2}],"volume_condition":{"message":"OK"}}`

func TestStatsGoThroughTheLiveShim(t *testing.T) {
	// A space and a '?' prove the device travels escaped and comes back
	// intact; a stale sandbox id sorts first and must be skipped.
	e := newStatsEnv(t, "virtio-ab c?d")
	e.recordSandbox(t, "a-stale")
	e.recordSandbox(t, "b-live")
	shim := startFakeShim(t, e.sockDirs[0], "b-live", 200, guestBody)

	resp := e.stats(t)
	if len(resp.Usage) != 2 {
		t.Fatalf("usage %v", resp.Usage)
	}
	b, i := resp.Usage[0], resp.Usage[1]
	if b.Unit != csi.VolumeUsage_BYTES || b.Total != 1000 || b.Used != 300 || b.Available != 700 {
		t.Errorf("bytes usage %v", b)
	}
	if i.Unit != csi.VolumeUsage_INODES || i.Total != 100 || i.Used != 10 || i.Available != 90 {
		t.Errorf("inodes usage %v", i)
	}
	if q := shim.queried(); len(q) != 1 || q[0] != e.device {
		t.Fatalf("shim was asked for %q, want %q", q, e.device)
	}
	if h := e.health(); len(h) != 0 {
		t.Fatalf("health %v for a healthy guest", h)
	}
}

func TestStatsFindTheRuntimeRsSocketDir(t *testing.T) {
	e := newStatsEnv(t, "dev")
	e.recordSandbox(t, "sb")
	startFakeShim(t, e.sockDirs[1], "sb", 200, guestBody)
	if resp := e.stats(t); len(resp.Usage) != 2 || resp.Usage[0].Total != 1000 {
		t.Fatalf("usage %v", resp.Usage)
	}
}

func TestStatsWithoutALiveSandboxReportTheDeviceSize(t *testing.T) {
	e := newStatsEnv(t, "dev")
	e.recordSandbox(t, "gone")
	// A socket file nobody listens on any more.
	dir := filepath.Join(e.sockDirs[0], "gone")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, shimSocketName))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	resp := e.stats(t)
	if len(resp.Usage) != 1 || resp.Usage[0].Total != 1<<20 || resp.Usage[0].Unit != csi.VolumeUsage_BYTES {
		t.Fatalf("usage %v, want the device size", resp.Usage)
	}
	h := e.health()
	if len(h) != 1 || h[0].Status != csi.VolumeHealthErrorType_DEGRADED || h[0].Reason != HealthKataSandboxMissing {
		t.Fatalf("health %v, want DEGRADED %s", h, HealthKataSandboxMissing)
	}
}

func TestStatsWhenTheShimFails(t *testing.T) {
	e := newStatsEnv(t, "dev")
	e.recordSandbox(t, "sb")
	startFakeShim(t, e.sockDirs[0], "sb", 500, "agent: VolumeStatsRequest is blocked by policy")
	if resp := e.stats(t); len(resp.Usage) != 1 || resp.Usage[0].Total != 1<<20 {
		t.Fatalf("usage %v, want the device size", resp.Usage)
	}
	h := e.health()
	if len(h) != 1 || h[0].Reason != HealthKataStatsUnavailable || h[0].Status != csi.VolumeHealthErrorType_UNKNOWN_VOLUME_HEALTH_TYPE {
		t.Fatalf("health %v", h)
	}
}

func TestHealthReportsAnAbnormalGuestFilesystem(t *testing.T) {
	e := newStatsEnv(t, "dev")
	e.recordSandbox(t, "sb")
	startFakeShim(t, e.sockDirs[0], "sb", 200, `{"usage":[{"total":1000,"unit":1}],"volume_condition":{"abnormal":true,"message":"I/O error"}}`)
	h := e.health()
	if len(h) != 1 || h[0].Status != csi.VolumeHealthErrorType_DEGRADED || h[0].Reason != HealthKataGuestAbnormal {
		t.Fatalf("health %v", h)
	}
}

func TestStatsOfAnotherVolumeOrNoRecord(t *testing.T) {
	e := newStatsEnv(t, "dev")
	_, err := e.p.Stats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: "other", VolumePath: e.target})
	wantCode(t, err, codes.NotFound, "not \"other\"")
	_, err = e.p.Stats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: testVolumeID, VolumePath: "/nowhere"})
	wantCode(t, err, codes.NotFound, "no Kata direct volume")
	if h := e.p.Health(context.Background(), testVolumeID, "/nowhere"); h != nil {
		t.Fatalf("health without a record: %v", h)
	}
}

func TestHoldsVolume(t *testing.T) {
	e := newStatsEnv(t, "dev")
	if !e.p.HoldsVolume(testVolumeID) || e.p.HoldsVolume("other") {
		t.Fatal("HoldsVolume wrong")
	}
	if !e.p.Holds(e.target) || e.p.Holds(e.target+"/") {
		t.Fatal("Holds must match the exact target path")
	}
}
