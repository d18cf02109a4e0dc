package manilanode_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
)

// These tests make real bind mounts, in a private mount namespace (root
// only): a directory stands in for each share, as in the csi-sanity
// harness.

func TestMain(m *testing.M) { os.Exit(manilanodetest.RunInPrivateMountNamespace(m)) }

const (
	hostShareA = "6b3f1c2e-8a4d-4e5f-9a6b-7c8d9e0f1a2b"
	hostShareB = "0d1e2f3a-4b5c-4d6e-8f70-819203a4b5c6"
)

type hostNode struct {
	t    *testing.T
	root string
	ns   *manilanode.NodeServer
	dm   *manilanodetest.DirMounter
}

func newHostNode(t *testing.T, name string, shares map[string]string) *hostNode {
	t.Helper()
	manilanodetest.RequireMountNamespace(t)
	root := t.TempDir()
	dm := manilanodetest.NewDirMounter(func(id string) (string, bool) {
		d, ok := shares[id]
		return d, ok
	})
	ns, err := manilanode.NewNodeServer(manilanode.NodeOptions{NodeName: name, NodeAddresses: []string{}, KubeletRootDir: root, Mounter: dm})
	if err != nil {
		t.Fatal(err)
	}
	n := &hostNode{t: t, root: root, ns: ns, dm: dm}
	t.Cleanup(func() {
		if left := manilanodetest.MountsUnder(t, root); len(left) > 0 {
			t.Errorf("mounts left under %s: %v", root, left)
			for i := len(left) - 1; i >= 0; i-- {
				_ = unix.Unmount(left[i], unix.MNT_DETACH)
			}
		}
	})
	return n
}

func (n *hostNode) staging(vol string) string {
	return filepath.Join(n.root, "plugins/kubernetes.io/csi/manila.csi.openstack.org", vol, "globalmount")
}

func (n *hostNode) target(vol, pod string) string {
	return filepath.Join(n.root, "pods", pod, "volumes/kubernetes.io~csi/pv-"+vol[:4]+"/mount")
}

var rwxCap = &csi.VolumeCapability{
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
}

func (n *hostNode) stage(vol string) error {
	_, err := n.ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
		VolumeId: vol, StagingTargetPath: n.staging(vol), VolumeCapability: rwxCap,
		VolumeContext: map[string]string{manilanode.KeyProtocol: "NFS", manilanode.KeyExportLocation: "192.0.2.5:/exports/" + vol},
	})
	return err
}

func (n *hostNode) publish(vol, staging, target string, ro bool) error {
	_, err := n.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: vol, StagingTargetPath: staging, TargetPath: target, VolumeCapability: rwxCap, Readonly: ro,
	})
	return err
}

func (n *hostNode) unpublish(vol, target string) error {
	_, err := n.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target})
	return err
}

func (n *hostNode) unstage(vol, staging string) error {
	_, err := n.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging})
	return err
}

func (n *hostNode) must(err error) {
	n.t.Helper()
	if err != nil {
		n.t.Fatal(err)
	}
}

func wantHostCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v (%v), want %v", status.Code(err), err, code)
	}
}

func TestHostWriteOnOneNodeReadOnTheOther(t *testing.T) {
	shares := map[string]string{hostShareA: t.TempDir()}
	n1, n2 := newHostNode(t, "node-1", shares), newHostNode(t, "node-2", shares)
	t1, t2 := n1.target(hostShareA, "writer"), n2.target(hostShareA, "reader")
	n1.must(n1.stage(hostShareA))
	n1.must(n1.publish(hostShareA, n1.staging(hostShareA), t1, false))
	n2.must(n2.stage(hostShareA))
	n2.must(n2.publish(hostShareA, n2.staging(hostShareA), t2, true))

	n1.must(os.WriteFile(filepath.Join(t1, "hello.txt"), []byte("from node-1"), 0o644))
	got, err := os.ReadFile(filepath.Join(t2, "hello.txt"))
	if err != nil || string(got) != "from node-1" {
		t.Fatalf("node-2 read %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(t2, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write on the read-only publish: %v, want EROFS", err)
	}
	resp, err := n2.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: hostShareA, VolumePath: t2})
	n2.must(err)
	if resp.GetUsage()[0].GetTotal() <= 0 {
		t.Fatalf("stats %v", resp.GetUsage())
	}
	for _, n := range []*hostNode{n1, n2} {
		tgt := t1
		if n == n2 {
			tgt = t2
		}
		n.must(n.unpublish(hostShareA, tgt))
		n.must(n.unstage(hostShareA, n.staging(hostShareA)))
		if left := manilanodetest.MountsUnder(t, n.root); len(left) > 0 {
			t.Fatalf("mounts left: %v", left)
		}
	}
	if _, err := os.Stat(filepath.Join(shares[hostShareA], "hello.txt")); err != nil {
		t.Fatalf("the share lost its data: %v", err)
	}
}

func TestHostNodeTouchesOnlyItsOwnVolumesMounts(t *testing.T) {
	shares := map[string]string{hostShareA: t.TempDir(), hostShareB: t.TempDir()}
	n := newHostNode(t, "node-1", shares)
	tA, tB := n.target(hostShareA, "pa"), n.target(hostShareB, "pb")
	for _, v := range []struct{ id, target string }{{hostShareA, tA}, {hostShareB, tB}} {
		n.must(n.stage(v.id))
		n.must(n.publish(v.id, n.staging(v.id), v.target, false))
	}
	decoy := t.TempDir()
	n.must(os.WriteFile(filepath.Join(decoy, "passwd"), []byte("decoy"), 0o644))
	link := filepath.Join(n.root, "pods", "evil")
	n.must(os.Symlink(decoy, link))
	steal := n.target(hostShareA, "thief")

	wantHostCode(t, n.publish(hostShareA, n.staging(hostShareB), steal, false), codes.FailedPrecondition)
	wantHostCode(t, n.publish(hostShareA, decoy, steal, false), codes.InvalidArgument)
	wantHostCode(t, n.publish(hostShareA, "/", steal, false), codes.InvalidArgument)
	wantHostCode(t, n.publish(hostShareA, n.staging(hostShareA), filepath.Join(link, "mount"), false), codes.InvalidArgument)
	wantHostCode(t, n.unpublish(hostShareB, tA), codes.FailedPrecondition)
	wantHostCode(t, n.unstage(hostShareA, n.staging(hostShareB)), codes.FailedPrecondition)
	_, err := n.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: hostShareA, VolumePath: "/"})
	wantHostCode(t, err, codes.NotFound)
	_, err = n.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: hostShareA, VolumePath: tB})
	wantHostCode(t, err, codes.NotFound)

	if _, err := os.Stat(steal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused target %s was created (err %v)", steal, err)
	}
	if m := manilanodetest.MountsUnder(t, decoy); len(m) > 0 {
		t.Errorf("the decoy got mounts: %v", m)
	}
	if len(manilanodetest.MountsUnder(t, tA)) != 1 || len(manilanodetest.MountsUnder(t, n.staging(hostShareB))) != 1 {
		t.Fatalf("a refused call removed a mount: %v", manilanodetest.MountsUnder(t, n.root))
	}
	for _, v := range []struct{ id, target string }{{hostShareA, tA}, {hostShareB, tB}} {
		n.must(n.unpublish(v.id, v.target))
		n.must(n.unstage(v.id, n.staging(v.id)))
	}
}
