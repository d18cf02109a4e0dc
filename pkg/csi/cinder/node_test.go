package cinder

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// fakeMetadata is a Provider with a fixed document.
type fakeMetadata struct {
	md      *metadata.Metadata
	err     error
	devices []metadata.Device
}

func (f *fakeMetadata) Get(context.Context) (*metadata.Metadata, error) { return f.md, f.err }
func (f *fakeMetadata) Devices(context.Context) ([]metadata.Device, error) {
	return f.devices, f.err
}

// Volume ids for tests that need no disk.
const (
	testVol   = "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f00aa"
	testOther = "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f00bb"
)

func newTestNodeServer(t *testing.T, opts NodeOptions) *NodeServer {
	t.Helper()
	if opts.Metadata == nil {
		opts.Metadata = &fakeMetadata{md: &metadata.Metadata{UUID: "server-1", AvailabilityZone: "nova"}}
	}
	if opts.DevRoot == "" {
		opts.DevRoot = t.TempDir()
	}
	if opts.SysRoot == "" {
		opts.SysRoot = t.TempDir()
	}
	if opts.UdevTrigger == nil {
		opts.UdevTrigger = func(context.Context) error { return nil }
	}
	if opts.KubeletRoot == "" {
		opts.KubeletRoot = t.TempDir()
	}
	ns, err := NewNodeServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func wantCode(t *testing.T, err error, code codes.Code, mention string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Fatalf("error = %v, want it to mention %q", err, mention)
	}
}

func TestNewNodeServerRefusesBadOptions(t *testing.T) {
	md := &fakeMetadata{md: &metadata.Metadata{UUID: "s"}}
	for name, opts := range map[string]NodeOptions{
		"no metadata":       {},
		"negative limit":    {Metadata: md, NodeVolumeAttachLimit: -1},
		"zone key override": {Metadata: md, AdditionalTopology: map[string]string{TopologyKey: "x"}},
	} {
		if _, err := NewNodeServer(opts); err == nil {
			t.Errorf("NewNodeServer(%s) succeeded", name)
		}
	}
}

func TestNodeGetInfoReportsServerZoneAndLimit(t *testing.T) {
	md := &fakeMetadata{md: &metadata.Metadata{UUID: "83679162-1378-4288-a2d4-70e13ec132aa", AvailabilityZone: "zone a/1"}}
	cases := []struct {
		name     string
		opts     NodeOptions
		topology map[string]string
		limit    int64
	}{
		{"topology and default limit", NodeOptions{WithTopology: true, AdditionalTopology: map[string]string{"topology.kubernetes.io/region": "r1"}},
			map[string]string{TopologyKey: "zone-a-1", "topology.kubernetes.io/region": "r1"}, 26},
		{"no topology, configured limit", NodeOptions{NodeVolumeAttachLimit: 10}, nil, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Metadata = md
			ns := newTestNodeServer(t, c.opts)
			resp, err := ns.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetNodeId() != md.md.UUID || resp.GetMaxVolumesPerNode() != c.limit {
				t.Fatalf("NodeGetInfo = %v", resp)
			}
			got := resp.GetAccessibleTopology().GetSegments()
			if len(got) != len(c.topology) {
				t.Fatalf("topology = %v, want %v", got, c.topology)
			}
			for k, v := range c.topology {
				if got[k] != v {
					t.Fatalf("topology = %v, want %v", got, c.topology)
				}
			}
		})
	}
}

func TestNodeGetInfoWithoutMetadataFails(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{Metadata: &fakeMetadata{err: context.DeadlineExceeded}})
	_, err := ns.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	wantCode(t, err, codes.DeadlineExceeded, "instance metadata")
}

func TestNodeGetCapabilities(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	resp, err := ns.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range resp.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME, csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS, csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		if !got[want] {
			t.Errorf("capability %s missing", want)
		}
	}
}

func mountCap(fs string, flags ...string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs, MountFlags: flags}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// TestNodeRPCsRefuseBadInputNamingTheField checks that every invalid
// request gets InvalidArgument naming the field, before anything happens.
func TestNodeRPCsRefuseBadInputNamingTheField(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	ctx := context.Background()
	const vol = "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f0001"
	root := ns.opts.KubeletRoot
	sp, tp, vp := root+"/s", root+"/t", root+"/v"
	noMode := mountCap("ext4")
	noMode.AccessMode = nil
	noType := &csi.VolumeCapability{AccessMode: mountCap("").AccessMode}
	cases := []struct {
		name    string
		call    func() error
		mention string
	}{
		{"stage no id", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{StagingTargetPath: sp, VolumeCapability: mountCap("")})
			return err
		}, "volume_id"},
		{"stage id with slash", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "../../sda", StagingTargetPath: sp, VolumeCapability: mountCap("")})
			return err
		}, "volume_id"},
		{"stage id dots", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "..", StagingTargetPath: sp, VolumeCapability: mountCap("")})
			return err
		}, "volume_id"},
		{"stage no path", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, VolumeCapability: mountCap("")})
			return err
		}, "staging_target_path"},
		{"stage relative path", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: "s", VolumeCapability: mountCap("")})
			return err
		}, "staging_target_path"},
		{"stage no capability", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp})
			return err
		}, "volume_capability"},
		{"stage no access mode", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: noMode})
			return err
		}, "volume_capability.access_mode"},
		{"stage no access type", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: noType})
			return err
		}, "access_type"},
		{"stage btrfs", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: mountCap("btrfs")})
			return err
		}, "fs_type"},
		{"stage bad flag", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: mountCap("ext4", "a b")})
			return err
		}, "mount_flags"},
		{"stage bad resizeRequired", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: mountCap(""),
				VolumeContext: map[string]string{VolumeContextResizeRequired: "yes please"}})
			return err
		}, VolumeContextResizeRequired},
		{"stage bad size", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: mountCap(""),
				PublishContext: map[string]string{PublishContextVolumeSizeBytes: "1G"}})
			return err
		}, PublishContextVolumeSizeBytes},
		{"unstage no path", func() error {
			_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol})
			return err
		}, "staging_target_path"},
		{"publish no target", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: sp, VolumeCapability: mountCap("")})
			return err
		}, "target_path"},
		{"publish no staging", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, TargetPath: tp, VolumeCapability: mountCap("")})
			return err
		}, "staging_target_path"},
		{"publish same paths", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, TargetPath: tp, StagingTargetPath: tp, VolumeCapability: mountCap("")})
			return err
		}, "target_path"},
		{"publish no capability", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, TargetPath: tp, StagingTargetPath: sp})
			return err
		}, "volume_capability"},
		{"unpublish no id", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{TargetPath: tp})
			return err
		}, "volume_id"},
		{"unpublish no target", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol})
			return err
		}, "target_path"},
		{"expand no path", func() error {
			_, err := ns.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: vol})
			return err
		}, "volume_path"},
		{"expand bad range", func() error {
			_, err := ns.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: vol, VolumePath: vp,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 10, LimitBytes: 5}})
			return err
		}, "capacity_range"},
		{"stats no path", func() error {
			_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol})
			return err
		}, "volume_path"},
		{"stats no id", func() error {
			_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumePath: vp})
			return err
		}, "volume_id"},
		{"health no id", func() error {
			_, err := ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{})
			return err
		}, "volume_id"},
		{"health relative path", func() error {
			_, err := ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: vol, VolumePublishPath: "v"})
			return err
		}, "volume_publish_path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.call(), codes.InvalidArgument, c.mention)
		})
	}
}

func TestNodeStatsOfAMissingPathIsNotFound(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	_, err := ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: testVol, VolumePath: "/nonexistent/path"})
	wantCode(t, err, codes.NotFound, "/nonexistent/path")
}

func TestNodeStatsOfAnUnmountedDirectoryIsNotFound(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	_, err := ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: testVol, VolumePath: mkdirUnder(t, ns, "pods/p/mount")})
	wantCode(t, err, codes.NotFound, "not mounted")
}

func TestNodeUnpublishAndUnstageOfNothingSucceed(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	ctx := context.Background()
	if _, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: testVol, TargetPath: ns.opts.KubeletRoot + "/nonexistent/target"}); err != nil {
		t.Fatalf("NodeUnpublishVolume of a missing target: %v", err)
	}
	if _, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: testVol, StagingTargetPath: ns.opts.KubeletRoot + "/nonexistent/staging"}); err != nil {
		t.Fatalf("NodeUnstageVolume of a missing staging path: %v", err)
	}
}

func TestNodeStageOfAnAbsentVolumeIsNotFoundAtTheDeadline(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f0001", StagingTargetPath: ns.opts.KubeletRoot + "/s", VolumeCapability: mountCap("")})
	wantCode(t, err, codes.NotFound, "not attached")
}

func TestNodeConcurrentCallOnOneVolumeIsAborted(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	unlock, err := ns.lock(testVol)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: testVol, TargetPath: ns.opts.KubeletRoot + "/t"})
	wantCode(t, err, codes.Aborted, testVol)
	// Another volume is not blocked.
	if _, err := ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: testOther, TargetPath: ns.opts.KubeletRoot + "/nonexistent"}); err != nil {
		t.Fatal(err)
	}
}

func TestNodeKataLookupFailureIsUnavailable(t *testing.T) {
	kata := &fakeKata{wantsErr: errors.New("pods/p: connection refused")}
	ns := newTestNodeServer(t, NodeOptions{Kata: kata})
	_, err := ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: testVol, TargetPath: ns.opts.KubeletRoot + "/t", StagingTargetPath: ns.opts.KubeletRoot + "/s", VolumeCapability: mountCap("ext4"),
	})
	wantCode(t, err, codes.Unavailable, "connection refused")
}

func TestNodeExpandRefusesWhileKataHoldsTheVolume(t *testing.T) {
	kata := &fakeKata{holdsVolume: true}
	ns := newTestNodeServer(t, NodeOptions{Kata: kata})
	_, err := ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{VolumeId: testVol, VolumePath: ns.opts.KubeletRoot + "/v"})
	wantCode(t, err, codes.FailedPrecondition, "pod restart")
}

// fakeKata records what the node server asks of a KataPublisher.
type fakeKata struct {
	wants       bool
	wantsErr    error
	holds       bool
	holdsVolume bool
	published   []string // device paths
	unpublished int
	stats       int
}

func (k *fakeKata) Wants(context.Context, *csi.NodePublishVolumeRequest) (bool, error) {
	return k.wants, k.wantsErr
}
func (k *fakeKata) Publish(_ context.Context, _ *csi.NodePublishVolumeRequest, devicePath string) (*csi.NodePublishVolumeResponse, error) {
	k.published = append(k.published, devicePath)
	return &csi.NodePublishVolumeResponse{}, nil
}
func (k *fakeKata) Holds(string) bool       { return k.holds }
func (k *fakeKata) HoldsVolume(string) bool { return k.holdsVolume }
func (k *fakeKata) Unpublish(context.Context, *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	k.unpublished++
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
func (k *fakeKata) Stats(context.Context, *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	k.stats++
	return &csi.NodeGetVolumeStatsResponse{}, nil
}

// mkdirUnder makes a directory beneath the server's kubelet root.
func mkdirUnder(t *testing.T, ns *NodeServer, rel string) string {
	t.Helper()
	dir := filepath.Join(ns.opts.KubeletRoot, rel)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

func codeOf(err error) codes.Code { return status.Code(err) }

func exec(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestNodeHealthReportsAFilesystemTurnedReadOnly reads a mount table in
// which the superblock went read-only under a read-write mount, which is
// what the kernel does after I/O or consistency errors.
func TestNodeHealthReportsAFilesystemTurnedReadOnly(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "pods", "p", "mount")
	if err := os.MkdirAll(path, 0o750); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "mountinfo")
	line := "42 1 7:3 / " + path + " rw,relatime shared:1 - ext4 /dev/loop3 ro,errors=remount-ro\n"
	if err := os.WriteFile(table, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newTestNodeServer(t, NodeOptions{MountInfoPath: table, KubeletRoot: root})
	resp, err := ns.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: testVol, VolumePublishPath: path})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range resp.GetVolumeHealth().GetHealthStatuses() {
		got = append(got, h.GetStatus().String()+"/"+h.GetReason())
	}
	want := "DEGRADED/" + healthReadOnly
	if !strings.Contains(strings.Join(got, " "), want) {
		t.Fatalf("health = %v, want %s", got, want)
	}
}

// TestNodeStatsAndExpandOfANonUUIDAreNotFound: such an id names no volume
// on this node (csi-sanity's default ids, fake-vol-id-..., expect NotFound),
// while a malformed one stays InvalidArgument.
func TestNodeStatsAndExpandOfANonUUIDAreNotFound(t *testing.T) {
	ns := newTestNodeServer(t, NodeOptions{})
	ctx := context.Background()
	_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "fake-vol-id-0123456789", VolumePath: "some/path"})
	wantCode(t, err, codes.NotFound, "some/path")
	target := mkdirUnder(t, ns, "pods/p/mount")
	_, err = ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "fake-vol-id-0123456789", VolumePath: target})
	wantCode(t, err, codes.NotFound, "not a Cinder volume id")
	_, err = ns.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "fake-vol-id-0123456789", VolumePath: target})
	wantCode(t, err, codes.NotFound, "not a Cinder volume id")
	_, err = ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "a\nb", VolumePath: "some/path"})
	wantCode(t, err, codes.InvalidArgument, "control character")
	_, err = ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "fake-vol-id-0123456789"})
	wantCode(t, err, codes.InvalidArgument, "volume_path")
}
