package manilanode

import (
	"context"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// partner is a tiny CSI node server standing in for csi-driver-nfs or
// ceph-csi: it records what it is sent.
type partner struct {
	csi.UnimplementedNodeServer
	mu   sync.Mutex
	reqs []proto.Message
}

func (p *partner) record(m proto.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, m)
}

func (p *partner) last() proto.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs[len(p.reqs)-1]
}

func (p *partner) NodeStageVolume(_ context.Context, r *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	p.record(r)
	return &csi.NodeStageVolumeResponse{}, nil
}

func (p *partner) NodeUnstageVolume(_ context.Context, r *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	p.record(r)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (p *partner) NodePublishVolume(_ context.Context, r *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	p.record(r)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (p *partner) NodeUnpublishVolume(_ context.Context, r *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	p.record(r)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (p *partner) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME}},
	}}}, nil
}

func startPartner(t *testing.T) (*partner, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "partner.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &partner{}
	srv := grpc.NewServer()
	csi.RegisterNodeServer(srv, p)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return p, "unix://" + sock
}

func newForwardingEnv(t *testing.T, endpoint string) *testEnv {
	t.Helper()
	root := t.TempDir()
	ns, err := NewNodeServer(NodeOptions{NodeName: "node-1", NodeAddresses: []string{}, KubeletRootDir: root, ForwardEndpoint: endpoint, ForwardConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	return &testEnv{t: t, root: ns.root.Dir(), ns: ns}
}

func TestForwardingTranslatesNFSForCSIDriverNFS(t *testing.T) {
	p, endpoint := startPartner(t)
	e := newForwardingEnv(t, endpoint)
	vctx := nfsContext(nfsExpA)
	vctx[KeyNFSMountOptions] = "hard"
	_, err := e.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: shareA, TargetPath: e.target(shareA), VolumeCapability: rwx, VolumeContext: vctx,
	})
	e.must(err)
	got := p.last().(*csi.NodePublishVolumeRequest)
	want := map[string]string{"server": "10.0.0.5", "share": "/volumes/_nogroup/a/uuid-a"}
	if !maps.Equal(got.GetVolumeContext(), want) {
		t.Errorf("volume context %v, want %v", got.GetVolumeContext(), want)
	}
	if flags := got.GetVolumeCapability().GetMount().GetMountFlags(); !slices.Equal(flags, []string{"vers=4.1", "hard"}) {
		t.Errorf("mount flags %v", flags)
	}
	if got.GetTargetPath() != e.target(shareA) {
		t.Errorf("target %q", got.GetTargetPath())
	}
}

func TestForwardingTranslatesCephFSForCephCSI(t *testing.T) {
	p, endpoint := startPartner(t)
	e := newForwardingEnv(t, endpoint)
	vctx := cephContext(cephExpA)
	vctx[KeyFSName], vctx[KeyCephFSMounter], vctx[KeyCephKernelOptions] = "cephfs", "kernel", "noatime"
	req := e.stageReq(shareA, vctx)
	req.Secrets = map[string]string{KeyUserKey: testKey}
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	e.must(err)
	got := p.last().(*csi.NodeStageVolumeRequest)
	want := map[string]string{"monitors": "10.0.0.7:6789,10.0.0.8:6789", "rootPath": "/volumes/_nogroup/a/uuid-a", "mounter": "kernel",
		"provisionVolume": "false", "fsName": "cephfs", "kernelMountOptions": "noatime"}
	if !maps.Equal(got.GetVolumeContext(), want) {
		t.Errorf("volume context %v, want %v", got.GetVolumeContext(), want)
	}
	if !maps.Equal(got.GetSecrets(), map[string]string{"userID": "pvc-a", "userKey": testKey}) {
		t.Errorf("secrets keys %v", slices.Collect(maps.Keys(got.GetSecrets())))
	}
	_, err = e.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: shareA, StagingTargetPath: e.staging(shareA)})
	e.must(err)
	if _, ok := p.last().(*csi.NodeUnstageVolumeRequest); !ok {
		t.Errorf("unstage not forwarded: %T", p.last())
	}
	caps, err := e.ns.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	e.must(err)
	if len(caps.GetCapabilities()) != 1 {
		t.Errorf("capabilities %v, want the partner's", caps.GetCapabilities())
	}
	info, err := e.ns.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	e.must(err)
	if info.GetNodeId() != "node-1" {
		t.Errorf("node id %q, want ours", info.GetNodeId())
	}
}

func TestForwardingStillChecksPaths(t *testing.T) {
	p, endpoint := startPartner(t)
	e := newForwardingEnv(t, endpoint)
	_, err := e.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: shareA, TargetPath: "/etc"})
	wantCode(t, err, codes.InvalidArgument, "kubelet root")
	if len(p.reqs) != 0 {
		t.Fatalf("forwarded %v", p.reqs)
	}
}

func TestAMissingPartnerIsUnavailableNamingTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "absent.sock")
	root := t.TempDir()
	ns, err := NewNodeServer(NodeOptions{NodeName: "node-1", KubeletRootDir: root, ForwardEndpoint: sock, ForwardConnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	_, err = ns.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	wantCode(t, err, codes.Unavailable, sock)
}
