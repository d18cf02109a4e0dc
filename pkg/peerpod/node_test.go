package peerpod

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cinder-csi/cinder-csi/pkg/kata"
)

type noInfo struct{}

func (noInfo) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: workerID}, nil
}

const (
	nodeVolID  = "3b2a1c0d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	gatePodUID = "uid-web-0"
)

// gatePod is a pod of namespace ns named name with runtime class rc ("" =
// none, runc).
func gatePod(name, rc string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)}}
	if rc != "" {
		p.Spec.RuntimeClassName = &rc
	}
	return p
}

// testNode is a node service whose API holds pods.
func testNode(t *testing.T, kubelet, records string, pods ...runtime.Object) *NodeServer {
	t.Helper()
	gate, err := NewPodGate(fake.NewSimpleClientset(pods...), nil)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := NewNodeServer(noInfo{}, gate, records, kubelet)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// publishReq is kubelet's publish for pod ns/web-0 (podInfoOnMount keys).
func publishReq(target string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId: nodeVolID, TargetPath: target,
		VolumeContext: map[string]string{kata.PodNamespaceKey: "ns", kata.PodNameKey: "web-0", kata.PodUIDKey: gatePodUID},
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "xfs", MountFlags: []string{"noatime"}}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		},
	}
}

// TestNodeWritesTheRecordCAAReads: NodePublish writes exactly the Kata
// record cloud-api-adaptor's proxy reads (directvol, device = the Cinder
// volume id, cloud-volume-path), idempotently; NodeUnpublish removes it.
func TestNodeWritesTheRecordCAAReads(t *testing.T) {
	kubelet, records := t.TempDir(), t.TempDir()
	ns := testNode(t, kubelet, records, gatePod("web-0", DefaultRuntimeClass))
	target := filepath.Join(kubelet, "pods/uid-web-0/volumes/kubernetes.io~csi/pv-1/mount")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := ns.NodePublishVolume(context.Background(), publishReq(target)); err != nil {
			t.Fatalf("NodePublish #%d: %v", i+1, err)
		}
	}
	name, _ := kata.EncodePath(target)
	data, err := os.ReadFile(filepath.Join(records, name, kata.MountInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	meta, _ := got["metadata"].(map[string]any)
	if got["volume-type"] != "directvol" || got["device"] != nodeVolID || got["fstype"] != "xfs" || meta[MetaCloudVolumePath] != nodeVolID {
		t.Fatalf("record %s", data)
	}
	t.Logf("record: %s", data)
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Fatalf("target not created: %v", err)
	}
	if _, err := ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: nodeVolID, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(records, name)); !os.IsNotExist(err) {
		t.Fatalf("record left after unpublish: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target left after unpublish: %v", err)
	}
}

func TestNodeRefusesWhatAPodVMCannotTake(t *testing.T) {
	kubelet := t.TempDir()
	ns := testNode(t, kubelet, t.TempDir(), gatePod("web-0", DefaultRuntimeClass))
	target := filepath.Join(kubelet, "pods/u/volumes/kubernetes.io~csi/pv/mount")
	rwo := publishReq(target)
	rwo.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	block := publishReq(target)
	block.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	outside := publishReq("/etc/evil")
	for name, tc := range map[string]struct {
		req  *csi.NodePublishVolumeRequest
		code codes.Code
	}{
		"ReadWriteOnce": {rwo, codes.FailedPrecondition},
		"raw block":     {block, codes.InvalidArgument},
		"outside root":  {outside, codes.InvalidArgument},
	} {
		if _, err := ns.NodePublishVolume(context.Background(), tc.req); Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	caps, _ := ns.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	if len(caps.GetCapabilities()) != 1 || caps.Capabilities[0].GetRpc().GetType() != csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER {
		t.Errorf("node capabilities %v: want only SINGLE_NODE_MULTI_WRITER (RWOP mapping), no staging", caps)
	}
	if _, err := ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{}); Code(err) != codes.Unimplemented {
		t.Errorf("stats: %v", err)
	}
}

// TestNodeFailsClosedForPodsNotInAPodVM: a peer-pod volume published for a
// pod that does not run in a pod VM (runc, a local Kata runtime class), for
// a pod kubelet names without identity, for a recreated pod or while the
// API cannot answer is refused with the right code and a message naming the
// pod, its runtime class and the expected ones, and nothing is written on
// the worker: no record, no target directory.
func TestNodeFailsClosedForPodsNotInAPodVM(t *testing.T) {
	kubelet, records := t.TempDir(), t.TempDir()
	ns := testNode(t, kubelet, records, gatePod("web-0", DefaultRuntimeClass), gatePod("plain", ""), gatePod("local-kata", "kata-qemu"))
	down := fake.NewSimpleClientset()
	down.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	downGate, _ := NewPodGate(down, nil)
	nsDown, err := NewNodeServer(noInfo{}, downGate, records, kubelet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pod, uid string
		node           *NodeServer
		code           codes.Code
		want           []string
	}{
		{"runc pod", "plain", "uid-plain", ns, codes.FailedPrecondition, []string{"ns/plain", "no RuntimeClass (runc)", "[kata-remote]", "nothing written"}},
		{"local Kata pod", "local-kata", "uid-local-kata", ns, codes.FailedPrecondition, []string{"ns/local-kata", `RuntimeClass "kata-qemu"`, "[kata-remote]"}},
		{"no pod info", "", "", ns, codes.FailedPrecondition, []string{"podInfoOnMount: true"}},
		{"pod gone", "gone", "uid-gone", ns, codes.FailedPrecondition, []string{"ns/gone", "does not exist"}},
		{"pod recreated", "web-0", "uid-old", ns, codes.Aborted, []string{"ns/web-0", "recreated"}},
		{"API down", "web-0", gatePodUID, nsDown, codes.Unavailable, []string{"ns/web-0", "connection refused"}},
	} {
		target := filepath.Join(kubelet, "pods", tc.uid+"x", "volumes/kubernetes.io~csi/pv/mount")
		req := publishReq(target)
		req.VolumeContext = map[string]string{kata.PodNamespaceKey: "ns", kata.PodNameKey: tc.pod, kata.PodUIDKey: tc.uid}
		if tc.pod == "" {
			req.VolumeContext = nil
		}
		_, err := tc.node.NodePublishVolume(context.Background(), req)
		if Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", tc.name, err, w)
			}
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("%s: target written on the worker (%v)", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if entries, err := os.ReadDir(records); err != nil || len(entries) != 0 {
		t.Errorf("records written for refused publishes: %v %v", entries, err)
	}
	if _, err := NewNodeServer(noInfo{}, nil, records, kubelet); err == nil {
		t.Error("a node without a pod gate was built (it would fail open)")
	}
}
