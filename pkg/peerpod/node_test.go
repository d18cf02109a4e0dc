package peerpod

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/kata"
)

type noInfo struct{}

func (noInfo) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: workerID}, nil
}

const nodeVolID = "3b2a1c0d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

func publishReq(target string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId: nodeVolID, TargetPath: target,
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
	ns, err := NewNodeServer(noInfo{}, records, kubelet)
	if err != nil {
		t.Fatal(err)
	}
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
	ns, err := NewNodeServer(noInfo{}, t.TempDir(), kubelet)
	if err != nil {
		t.Fatal(err)
	}
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
