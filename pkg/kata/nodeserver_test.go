package kata

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// The node server and this package meet only through the interfaces in
// node_kata_hook.go.
var (
	_ cinder.KataPublisher      = (*Publisher)(nil)
	_ cinder.KataHealthReporter = (*Publisher)(nil)
)

type fakeMetadata struct{}

func (fakeMetadata) Get(context.Context) (*metadata.Metadata, error) {
	return &metadata.Metadata{UUID: "server-1", AvailabilityZone: "nova"}, nil
}
func (fakeMetadata) Devices(context.Context) ([]metadata.Device, error) { return nil, nil }

// nodeEnv is the real NodeServer wired to a real Publisher, a loop device
// found through a fake /dev/disk/by-id, the fake API server and fake shims.
type nodeEnv struct {
	*env
	ns *cinder.NodeServer
}

func newNodeEnv(t *testing.T) *nodeEnv {
	t.Helper()
	e := newEnv(t)
	e.dev = newLoopDevice(t, 64, testVolumeID)
	t.Cleanup(func() { unmountAllAt(e.staging) })
	devRoot := filepath.Dir(filepath.Dir(filepath.Dir(e.dev.link))) // <dir>/dev
	ns, err := cinder.NewNodeServer(cinder.NodeOptions{
		Metadata:    fakeMetadata{},
		DevRoot:     devRoot,
		SysRoot:     t.TempDir(),
		UdevTrigger: func(context.Context) error { return nil },
		Kata:        e.p,
		KubeletRoot: filepath.Dir(e.root), // staging and target are beside the records
	})
	if err != nil {
		t.Fatal(err)
	}
	return &nodeEnv{env: e, ns: ns}
}

func (n *nodeEnv) capability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
	}
}

func (n *nodeEnv) stageVolume(t *testing.T) {
	t.Helper()
	if _, err := n.ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
		VolumeId: testVolumeID, StagingTargetPath: n.staging, VolumeCapability: n.capability(),
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.staging, "data.txt"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *nodeEnv) nodePublish(mutate ...func(*csi.NodePublishVolumeRequest)) error {
	req := n.publishReq(func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability = n.capability() })
	for _, m := range mutate {
		m(req)
	}
	_, err := n.ns.NodePublishVolume(context.Background(), req)
	return err
}

func (n *nodeEnv) nodeUnpublish() error {
	_, err := n.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: testVolumeID, TargetPath: n.target})
	return err
}

func TestNodeServerKataLifecycle(t *testing.T) {
	n := newNodeEnv(t)
	n.stageVolume(t)

	if err := n.nodePublish(); err != nil {
		t.Fatal(err)
	}
	mi := n.assertPublished("ext4")
	if mi.Device != n.dev.link {
		t.Fatalf("record device %s, want the by-id path %s", mi.Device, n.dev.link)
	}
	if err := n.nodePublish(); err != nil {
		t.Fatalf("NodePublish retry: %v", err)
	}

	// Stats through a live shim of the sandbox the runtime recorded.
	dir, _ := n.p.store.Dir(n.target)
	if err := os.WriteFile(filepath.Join(dir, "sb-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	shim := startFakeShim(t, n.sockDirs[0], "sb-1", 200, guestBody)
	st, err := n.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: testVolumeID, VolumePath: n.target})
	if err != nil || len(st.Usage) != 2 || st.Usage[0].Total != 1000 {
		t.Fatalf("NodeGetVolumeStats = %v, %v", st, err)
	}
	if q := shim.queried(); len(q) != 1 || q[0] != n.dev.link {
		t.Fatalf("shim asked for %v", q)
	}

	// Growing a device a guest owns is refused.
	_, err = n.ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{
		VolumeId: testVolumeID, VolumePath: n.target, StagingTargetPath: n.staging,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20}, VolumeCapability: n.capability(),
	})
	wantCode(t, err, codes.FailedPrecondition, "pod restart")

	if err := n.nodeUnpublish(); err != nil {
		t.Fatal(err)
	}
	n.assertRestored()
	if err := n.nodeUnpublish(); err != nil {
		t.Fatalf("NodeUnpublish retry: %v", err)
	}
	if _, err := n.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: testVolumeID, StagingTargetPath: n.staging}); err != nil {
		t.Fatal(err)
	}
	if m := n.deviceMounts(); len(m) != 0 {
		t.Fatalf("device still mounted at %v after unstage", m)
	}
}

func TestNodeServerKataRefusalsAndFallbacks(t *testing.T) {
	n := newNodeEnv(t)
	n.stageVolume(t)

	t.Run("ReadWriteOnce with a Kata pod", func(t *testing.T) {
		err := n.nodePublish(func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
		})
		wantCode(t, err, codes.FailedPrecondition, "ReadWriteOncePod")
	})

	t.Run("lookup failure", func(t *testing.T) {
		n.api.failWith(podPath("ns", "app"), http.StatusInternalServerError)
		defer n.api.failWith(podPath("ns", "app"), 0)
		n.p.optIn.pods = map[string]*podFacts{}
		wantCode(t, n.nodePublish(), codes.Unavailable, "pod ns/app")
		if _, err := os.Stat(n.target); err == nil {
			t.Fatal("target created although the decision failed")
		}
	})

	t.Run("runc pod gets the host bind mount", func(t *testing.T) {
		n.api.addRuntimeClass("runc", "runc", nil)
		n.api.addPod(testPod("plain", "uid-plain", "runc"))
		err := n.nodePublish(func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext = podContext("plain", "uid-plain")
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
		})
		if err != nil {
			t.Fatal(err)
		}
		if n.p.Holds(n.target) {
			t.Fatal("Kata record for a runc pod")
		}
		data, err := os.ReadFile(filepath.Join(n.target, "data.txt"))
		if err != nil || string(data) != "precious" {
			t.Fatalf("bind mount content %q, %v", data, err)
		}
		// A Kata publish of the same volume now would share the
		// filesystem with the host mount.
		err = n.nodePublish(func(r *csi.NodePublishVolumeRequest) {
			r.TargetPath = filepath.Join(filepath.Dir(filepath.Dir(n.target)), "pv-9", "mount")
		})
		wantCode(t, err, codes.FailedPrecondition, "also mounted at")
		if err := n.nodeUnpublish(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("StorageClass opt-out", func(t *testing.T) {
		err := n.nodePublish(func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[VolumeContextKataDirectVolume] = "false"
		})
		if err != nil {
			t.Fatal(err)
		}
		if n.p.Holds(n.target) {
			t.Fatal("Kata record despite the StorageClass opt-out")
		}
		if err := n.nodeUnpublish(); err != nil {
			t.Fatal(err)
		}
	})
}
