package manila

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func newTestController(t *testing.T, mutate func(*ControllerOptions)) (*ControllerServer, *fakeCloud, *fakeKeys) {
	t.Helper()
	fc := newFakeCloud()
	keys := &fakeKeys{}
	o := DefaultControllerOptions()
	o.ClusterID = "unit"
	o.Keys = keys
	o.WithTopology = true
	if mutate != nil {
		mutate(&o)
	}
	cs, err := NewControllerServer(fakeClouds{fc}, o)
	if err != nil {
		t.Fatal(err)
	}
	return cs, fc, keys
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func createReq(name string, gib int64, p map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: gib << 30},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)},
		Parameters:         p,
	}
}

func codeOf(err error) codes.Code { return status.Code(err) }

func TestCreateVolumeNFSReturnsTheChosenExportAndIsIdempotent(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-1", 1, map[string]string{"type": "default"}))
	if err != nil {
		t.Fatal(err)
	}
	v := resp.GetVolume()
	want := map[string]string{"shareID": v.VolumeId, "protocol": "NFS", "exportLocation": "10.0.0.5:/volumes/" + v.VolumeId}
	for k, val := range want {
		if v.VolumeContext[k] != val {
			t.Errorf("volume context %s = %q, want %q", k, v.VolumeContext[k], val)
		}
	}
	if got := v.AccessibleTopology[0].Segments[TopologyKey]; got != "nova" {
		t.Errorf("topology zone %q, want nova", got)
	}
	if rules, _ := fc.ListAccessRules(ctx, v.VolumeId); len(rules) != 0 {
		t.Errorf("an NFS share without nfs-shareClient got rules at create: %+v", rules)
	}
	again, err := cs.CreateVolume(ctx, createReq("pvc-1", 1, map[string]string{"type": "default"}))
	if err != nil || again.GetVolume().VolumeId != v.VolumeId {
		t.Fatalf("retry: %v, id %s, want %s", err, again.GetVolume().GetVolumeId(), v.VolumeId)
	}
	if _, err := cs.CreateVolume(ctx, createReq("pvc-1", 5, nil)); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("same name, bigger size: %v, want AlreadyExists", err)
	}
	if fc.shares[v.VolumeId].Metadata[openstack.MetaManilaCluster] != "unit" {
		t.Errorf("ownership metadata missing: %v", fc.shares[v.VolumeId].Metadata)
	}
}

func TestCreateVolumeRefusesBadInputBeforeTouchingTheCloud(t *testing.T) {
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	tests := []struct {
		name string
		req  *csi.CreateVolumeRequest
		code codes.Code
	}{
		{"no name", createReq("", 1, nil), codes.InvalidArgument},
		{"unknown parameter", createReq("a", 1, map[string]string{"typo": "x"}), codes.InvalidArgument},
		{"bad protocol", createReq("a", 1, map[string]string{"protocol": "SMB"}), codes.InvalidArgument},
		{"bad metadata JSON", createReq("a", 1, map[string]string{"appendShareMetadata": "{"}), codes.InvalidArgument},
		{"block", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{block}}, codes.InvalidArgument},
		{"limit below one GiB", &csi.CreateVolumeRequest{Name: "a", CapacityRange: &csi.CapacityRange{LimitBytes: 1 << 20},
			VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}}, codes.OutOfRange},
		{"overflowing size", &csi.CreateVolumeRequest{Name: "a", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 62},
			VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}}, codes.OutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, fc, _ := newTestController(t, nil)
			_, err := cs.CreateVolume(context.Background(), tt.req)
			if codeOf(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
			if len(fc.calls) != 0 {
				t.Errorf("cloud calls made: %v", fc.calls)
			}
		})
	}
}

func TestCreateVolumeDeletesAShareThatWentToError(t *testing.T) {
	tests := []struct {
		message string
		code    codes.Code
	}{
		{"No valid host was found. Quota exceeded for gigabytes", codes.ResourceExhausted},
		{"Driver failed to create the share", codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			cs, fc, _ := newTestController(t, nil)
			fc.createStatus, fc.createMessage = openstack.ShareError, tt.message
			_, err := cs.CreateVolume(context.Background(), createReq("pvc-err", 1, nil))
			if codeOf(err) != tt.code || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("got %v, want %v with Manila's message", err, tt.code)
			}
			if len(fc.shares) != 0 {
				t.Errorf("the failed share was left behind: %v", fc.shares)
			}
		})
	}
}

func TestCreateVolumeCephFSWaitsForTheKeyAndStoresItInASecret(t *testing.T) {
	cs, fc, keys := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-ceph", 1, map[string]string{"protocol": "cephfs", "cephfs-mounter": "kernel", params.KeyPVName: "pvc-ceph"}))
	if err != nil {
		t.Fatal(err)
	}
	v := resp.GetVolume()
	if v.VolumeContext["protocol"] != "CEPHFS" || v.VolumeContext["cephfs-clientID"] != "pvc-ceph" || v.VolumeContext["cephfs-mounter"] != "kernel" {
		t.Errorf("volume context %v", v.VolumeContext)
	}
	rules := fc.rules[v.VolumeId]
	if len(rules) != 1 || rules[0].AccessType != "cephx" || rules[0].State != openstack.AccessActive {
		t.Fatalf("rules %+v, want one active cephx rule", rules)
	}
	secret := keys.secrets["kube-system/manila-cephx-pvc-ceph"]
	if secret["userID"] != "pvc-ceph" || secret["userKey"] != rules[0].AccessKey {
		t.Errorf("secret %v", secret)
	}
	pub, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: v.VolumeId, NodeId: "node-a", VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), VolumeContext: v.VolumeContext,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, leaked := pub.PublishContext[params.PubUserKey]; leaked {
		t.Errorf("the key travelled in the publish context with secret delivery: %v", pub.PublishContext)
	}
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.VolumeId}); err != nil {
		t.Fatal(err)
	}
	if len(keys.secrets) != 0 || len(fc.shares) != 0 {
		t.Errorf("after delete: secrets %v, shares %v", keys.secrets, fc.shares)
	}
}

func TestPublishCephFSWithPublishContextDeliveryReturnsTheKey(t *testing.T) {
	cs, _, _ := newTestController(t, func(o *ControllerOptions) { o.KeyDelivery = DeliveryPublishContext; o.Keys = nil })
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-c", 1, map[string]string{"protocol": "CEPHFS", "cephfs-clientID": "alice"}))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: resp.Volume.VolumeId, NodeId: "n1/10.1.0.1", VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
	})
	if err != nil {
		t.Fatal(err)
	}
	if pub.PublishContext["cephfs-clientID"] != "alice" || pub.PublishContext["userKey"] != "AQD-secret-key-of-alice" || pub.PublishContext["exportLocation"] == "" {
		t.Errorf("publish context %v", pub.PublishContext)
	}
}

func TestAccessRuleWaitHoldsTheRPCUntilTheRuleIsActive(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-race", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	waiting, release := make(chan string, 1), make(chan struct{})
	fc.ruleWait = func(r *openstack.AccessRule) {
		waiting <- r.State
		<-release
	}
	done := make(chan error, 1)
	go func() {
		_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: resp.Volume.VolumeId, NodeId: "n1/10.1.0.1", VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
		})
		done <- err
	}()
	if state := <-waiting; state != openstack.AccessQueuedToApply {
		t.Fatalf("the wait began in state %q", state)
	}
	select {
	case err := <-done:
		t.Fatalf("publish returned (%v) while the rule was still queued_to_apply", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPublishNFSGrantsPerNodeRulesAndUnpublishRevokesOnlyThatNodes(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-nfs", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Volume.VolumeId
	publish := func(node string, ro bool) error {
		_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: id, NodeId: node, Readonly: ro, VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), VolumeContext: resp.Volume.VolumeContext,
		})
		return err
	}
	if err := publish("node-a/10.1.0.1,fd00::1", false); err != nil {
		t.Fatal(err)
	}
	if err := publish("node-a/10.1.0.1,fd00::1", false); err != nil {
		t.Fatalf("idempotent publish: %v", err)
	}
	if err := publish("node-b/10.1.0.2", true); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range fc.rules[id] {
		got[r.AccessTo] = r.AccessLevel + "," + r.Metadata[MetaNode] + "," + r.State
	}
	want := map[string]string{"10.1.0.1": "rw,node-a,active", "fd00::1": "rw,node-a,active", "10.1.0.2": "ro,node-b,active"}
	if len(got) != len(want) {
		t.Fatalf("rules %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("rule %s = %s, want %s", k, got[k], v)
		}
	}
	if _, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "node-a/10.1.0.1,fd00::1"}); err != nil {
		t.Fatal(err)
	}
	if rules := fc.rules[id]; len(rules) != 1 || rules[0].AccessTo != "10.1.0.2" {
		t.Errorf("after unpublishing node-a: %+v", rules)
	}
	if err := publish("node-c", false); codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "node-c") {
		t.Errorf("node without addresses: %v, want FailedPrecondition naming it", err)
	}
}

func TestPublishRefusesUnknownVolumesAndNodes(t *testing.T) {
	cs, _, _ := newTestController(t, func(o *ControllerOptions) { o.Nodes = nodeSet{"node-a": true} })
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-x", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, volume, node string
		code               codes.Code
	}{
		{"missing volume id", "", "node-a/10.0.0.1", codes.InvalidArgument},
		{"missing node id", resp.Volume.VolumeId, "", codes.InvalidArgument},
		{"node id with a bad address", resp.Volume.VolumeId, "node-a/not-an-ip", codes.InvalidArgument},
		{"unknown share", "share-9999", "node-a/10.0.0.1", codes.NotFound},
		{"unknown node", resp.Volume.VolumeId, "ghost/10.0.0.9", codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
				VolumeId: tt.volume, NodeId: tt.node, VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			})
			if codeOf(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
		})
	}
}

type nodeSet map[string]bool

func (n nodeSet) NodeExists(_ context.Context, name string) (bool, error) { return n[name], nil }

func TestCloneDeletesItsIntermediateSnapshot(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	src, err := cs.CreateVolume(ctx, createReq("pvc-src", 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	req := createReq("pvc-clone", 1, nil)
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.Volume.VolumeId}}}
	clone, err := cs.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if clone.Volume.CapacityBytes != 2<<30 {
		t.Errorf("clone size %d, want the source's 2 GiB", clone.Volume.CapacityBytes)
	}
	if len(fc.snapshots) != 0 {
		t.Errorf("intermediate snapshot left: %+v", fc.snapshots)
	}
	if _, err := cs.CreateVolume(ctx, req); err != nil {
		t.Fatalf("retrying the clone: %v", err)
	}
	if n := strings.Count(strings.Join(fc.calls, "\n"), "CreateShareSnapshot"); n != 1 {
		t.Errorf("%d intermediate snapshots taken, want 1: %v", n, fc.calls)
	}
}

func TestDeleteVolumeWithSnapshotsIsFailedPreconditionNamingThem(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-s", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: resp.Volume.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Snapshot.ReadyToUse {
		t.Errorf("snapshot not ready: %+v", snap.Snapshot)
	}
	_, err = cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.Volume.VolumeId})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), snap.Snapshot.SnapshotId) {
		t.Fatalf("got %v, want FailedPrecondition naming %s", err, snap.Snapshot.SnapshotId)
	}
	if _, err := cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap.Snapshot.SnapshotId}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.Volume.VolumeId}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.Volume.VolumeId}); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if len(fc.shares) != 0 {
		t.Errorf("shares left: %v", fc.shares)
	}
}

func TestExpandNeverShrinks(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-e", 3, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Volume.VolumeId
	tests := []struct {
		name      string
		req, lim  int64
		code      codes.Code
		wantBytes int64
	}{
		{"grow", 5 << 30, 0, codes.OK, 5 << 30},
		{"smaller request keeps the size", 1 << 30, 0, codes.OK, 5 << 30},
		{"limit below the size", 1 << 30, 2 << 30, codes.OutOfRange, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: tt.req, LimitBytes: tt.lim}})
			if codeOf(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
			if err == nil && (out.CapacityBytes != tt.wantBytes || out.NodeExpansionRequired) {
				t.Errorf("got %d bytes (node expansion %v), want %d", out.CapacityBytes, out.NodeExpansionRequired, tt.wantBytes)
			}
		})
	}
	if n := strings.Count(strings.Join(fc.calls, "\n"), "ExtendShare"); n != 1 {
		t.Errorf("%d extends, want 1", n)
	}
}

// Real Manila answers the extend before the share turns extending; the
// first poll sees it available at the old size, which is not done.
func TestExpandWaitsForTheNewSizeNotJustAvailable(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-lag", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	fc.extendLag = true
	out, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: resp.Volume.VolumeId, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if out.CapacityBytes != 2<<30 {
		t.Errorf("got %d bytes, want 2 GiB", out.CapacityBytes)
	}
}

func TestListVolumesPagesOurShares(t *testing.T) {
	cs, fc, _ := newTestController(t, nil)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := cs.CreateVolume(ctx, createReq(n, 1, nil)); err != nil {
			t.Fatal(err)
		}
	}
	fc.shares["foreign"] = &openstack.Share{ID: "foreign", Name: "x", Status: "available", Protocol: "NFS", Metadata: map[string]string{}}
	var ids []string
	token := ""
	for {
		resp, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Entries {
			ids = append(ids, e.Volume.VolumeId)
		}
		if token = resp.NextToken; token == "" {
			break
		}
	}
	if len(ids) != 3 {
		t.Errorf("listed %v, want our 3 shares", ids)
	}
	if _, err := cs.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "bogus"}); codeOf(err) != codes.Aborted {
		t.Errorf("bad token: %v, want Aborted", err)
	}
}

func TestGetCapacityIsTheFreeQuota(t *testing.T) {
	cs, _, _ := newTestController(t, nil)
	resp, err := cs.GetCapacity(context.Background(), &csi.GetCapacityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.AvailableCapacity != 85<<30 {
		t.Errorf("capacity %d, want 85 GiB (100 - 10 in use - 5 reserved)", resp.AvailableCapacity)
	}
}

func TestValidateVolumeCapabilities(t *testing.T) {
	cs, _, _ := newTestController(t, nil)
	ctx := context.Background()
	resp, err := cs.CreateVolume(ctx, createReq("pvc-v", 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	ext4 := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	ext4.GetMount().FsType = "ext4"
	for mode := range csi.VolumeCapability_AccessMode_Mode_name {
		if mode == 0 {
			continue
		}
		out, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: resp.Volume.VolumeId,
			VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_Mode(mode))}})
		if err != nil || out.Confirmed == nil {
			t.Errorf("mode %v: %v %v", csi.VolumeCapability_AccessMode_Mode(mode), out, err)
		}
	}
	for _, c := range []*csi.VolumeCapability{block, ext4} {
		out, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: resp.Volume.VolumeId, VolumeCapabilities: []*csi.VolumeCapability{c}})
		if err != nil || out.Confirmed != nil || out.Message == "" {
			t.Errorf("%v confirmed: %v %v", c, out, err)
		}
	}
	if _, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "nope", VolumeCapabilities: []*csi.VolumeCapability{ext4}}); codeOf(err) != codes.NotFound {
		t.Errorf("unknown volume: %v", err)
	}
}

// A static PV names its share by shareName (or shareID) and, for CephFS,
// the rule by shareAccessIDs; publish fills in the export location.
func TestStaticPVsPublishThroughTheirAttributes(t *testing.T) {
	cs, fc, _ := newTestController(t, func(o *ControllerOptions) { o.KeyDelivery = DeliveryPublishContext; o.Keys = nil })
	ctx := context.Background()
	share, _ := fc.CreateShare(ctx, openstack.CreateShareOpts{Name: "legacy", Protocol: "CEPHFS", SizeGiB: 10})
	if _, err := fc.WaitShare(ctx, share.ID, func(*openstack.Share) bool { return true }); err != nil {
		t.Fatal(err)
	}
	rule, _ := fc.GrantAccess(ctx, openstack.GrantAccessOpts{ShareID: share.ID, AccessType: "cephx", AccessTo: "legacy-user", AccessLevel: "rw"})
	pub, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: "static-pv-handle", NodeId: "node-a", VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
		VolumeContext: map[string]string{"shareName": "legacy", "shareAccessIDs": rule.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"exportLocation": "10.0.0.1:6789,10.0.0.2:6789:/volumes/_nogroup/" + share.ID, "cephfs-clientID": "legacy-user", "userKey": "AQD-secret-key-of-legacy-user"}
	for k, v := range want {
		if pub.PublishContext[k] != v {
			t.Errorf("publish context %s = %q, want %q", k, pub.PublishContext[k], v)
		}
	}
	_, err = cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: "static-pv-handle", NodeId: "node-a", VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
		VolumeContext: map[string]string{"shareName": "no-such-share"},
	})
	if codeOf(err) != codes.NotFound {
		t.Errorf("unknown shareName: %v, want NotFound", err)
	}
}
