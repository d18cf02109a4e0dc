package manila

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// These tests run the controller through the real cloud layer (gophercloud
// over HTTP) against the emulator's Manila.

func emulatorController(t *testing.T, mutate func(*ControllerOptions)) (*ControllerServer, *emulator.Emulator) {
	t.Helper()
	work := t.TempDir()
	emu, err := emulator.Start(emulator.Options{DataDir: filepath.Join(work, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	conf := filepath.Join(work, "cloud.conf")
	if err := os.WriteFile(conf, []byte(emu.CloudConf("Global", "demo")), 0o600); err != nil {
		t.Fatal(err)
	}
	clouds, err := openstack.NewShareClouds(context.Background(), []string{conf}, openstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultControllerOptions()
	o.ClusterID = "emulator"
	o.KeyDelivery, o.Keys = DeliveryPublishContext, nil
	if mutate != nil {
		mutate(&o)
	}
	cs, err := NewControllerServer(clouds, o)
	if err != nil {
		t.Fatal(err)
	}
	return cs, emu
}

func nfsClass() map[string]string {
	return map[string]string{"type": "cephfsnfstype", "protocol": "NFS"}
}

func rulesOn(emu *emulator.Emulator, shareID string) []string {
	var out []string
	for _, r := range emu.Manila().AccessRules(shareID) {
		out = append(out, r.Type+":"+r.To+":"+r.Level+":"+r.State)
	}
	sort.Strings(out)
	return out
}

func publishReq(id, node string, vc map[string]string) *csi.ControllerPublishVolumeRequest {
	return &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: node, VolumeContext: vc,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
}

// The reference's #3000: a rule used while still queued_to_apply. Manila
// holds the new rule; ControllerPublishVolume must not answer until it is
// active.
func TestPublishWaitsForARuleHeldInQueuedToApply(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-held", 1, nfsClass()))
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	emu.SetFaults(emulator.Faults{StuckAccessRules: true})
	done := make(chan error, 1)
	go func() {
		_, err := cs.ControllerPublishVolume(ctx, publishReq(id, "node-a/10.1.0.1", vol.Volume.VolumeContext))
		done <- err
	}()
	// Wait (bounded by ctx) until Manila holds the rule the RPC asked for.
	for held := false; !held; {
		select {
		case err := <-done:
			t.Fatalf("publish answered (%v) before the rule was even seen held", err)
		case <-ctx.Done():
			t.Fatal("the rule never appeared")
		case <-time.After(10 * time.Millisecond):
		}
		rules := rulesOn(emu, id)
		held = len(rules) == 1 && rules[0] == "ip:10.1.0.1:rw:queued_to_apply"
	}
	select {
	case err := <-done:
		t.Fatalf("publish answered (%v) while the rule was queued_to_apply", err)
	default:
	}
	emu.SetFaults(emulator.Faults{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rulesOn(emu, id); len(got) != 1 || got[0] != "ip:10.1.0.1:rw:active" {
		t.Errorf("rules after publish: %v", got)
	}
}

// A held rule past the deadline is Aborted naming the state, so the
// attacher retries; the retry adopts the same rule.
func TestPublishPastTheDeadlineIsAbortedAndTheRetryAdoptsTheRule(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-late", 1, nfsClass()))
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	emu.SetFaults(emulator.Faults{StuckAccessRules: true})
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = cs.ControllerPublishVolume(short, publishReq(id, "node-a/10.1.0.1", vol.Volume.VolumeContext))
	cancel()
	if codeOf(err) != codes.Aborted && codeOf(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want Aborted or DeadlineExceeded", err)
	}
	emu.SetFaults(emulator.Faults{})
	if _, err := cs.ControllerPublishVolume(ctx, publishReq(id, "node-a/10.1.0.1", vol.Volume.VolumeContext)); err != nil {
		t.Fatal(err)
	}
	if got := rulesOn(emu, id); len(got) != 1 {
		t.Errorf("rules %v, want the one adopted rule", got)
	}
}

// No NFS share is world-readable: only the addresses of published nodes
// have rules, and unpublishing a node removes exactly its rules.
func TestNFSShareIsReachableOnlyFromPublishedNodes(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-narrow", 1, nfsClass()))
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	if got := rulesOn(emu, id); len(got) != 0 {
		t.Fatalf("a new share has rules %v", got)
	}
	for _, node := range []string{"node-a/10.1.0.1,fd00::a", "node-b/10.1.0.2"} {
		if _, err := cs.ControllerPublishVolume(ctx, publishReq(id, node, vol.Volume.VolumeContext)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ip:10.1.0.1:rw:active", "ip:10.1.0.2:rw:active", "ip:fd00::a:rw:active"}
	if got := rulesOn(emu, id); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rules %v, want %v", got, want)
	}
	if _, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "node-a/10.1.0.1,fd00::a"}); err != nil {
		t.Fatal(err)
	}
	if got := rulesOn(emu, id); len(got) != 1 || got[0] != "ip:10.1.0.2:rw:active" {
		t.Errorf("after unpublishing node-a: %v", got)
	}
	if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
}

func TestCephFSRuleIsActiveWithItsKeyBeforeCreateVolumeAnswers(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx := context.Background()
	vol, err := cs.CreateVolume(ctx, createReq("pvc-cephx", 1, map[string]string{"type": "cephfstype", "protocol": "CEPHFS"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := rulesOn(emu, vol.Volume.VolumeId); len(got) != 1 || got[0] != "cephx:pvc-cephx:rw:active" {
		t.Fatalf("rules %v", got)
	}
	pub, err := cs.ControllerPublishVolume(ctx, publishReq(vol.Volume.VolumeId, "node-a", vol.Volume.VolumeContext))
	if err != nil {
		t.Fatal(err)
	}
	if pub.PublishContext["userKey"] == "" || pub.PublishContext["cephfs-clientID"] != "pvc-cephx" {
		t.Errorf("publish context keys %v", keysOf(pub.PublishContext))
	}
	if !strings.Contains(vol.Volume.VolumeContext["exportLocation"], ":6789:/volumes/") {
		t.Errorf("export %q", vol.Volume.VolumeContext["exportLocation"])
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestShareInErrorIsDeletedAndReportedWithManilasMessage(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx := context.Background()
	emu.SetFaults(emulator.Faults{ShareErrorRate: 1})
	_, err := cs.CreateVolume(ctx, createReq("pvc-doomed", 1, nfsClass()))
	if err == nil || !strings.Contains(err.Error(), "went to error") {
		t.Fatalf("got %v", err)
	}
	t.Logf("CreateVolume of a share that went to error: %v", err)
	emu.SetFaults(emulator.Faults{})
	c, _ := cs.clouds.ForSecrets(ctx, nil)
	if err := c.WaitShareGone(ctx, firstShareNamed(t, c, "pvc-doomed")); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CreateVolume(ctx, createReq("pvc-doomed", 1, nfsClass())); err != nil {
		t.Fatalf("the retry after the failed share: %v", err)
	}
}

func firstShareNamed(t *testing.T, c openstack.ShareCloud, name string) string {
	t.Helper()
	page, err := c.ListShares(context.Background(), openstack.ShareListOpts{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 {
		return "gone-already"
	}
	return page.Items[0].ID
}

func TestRestoreAndCloneLeaveOnlyTheNewShares(t *testing.T) {
	cs, emu := emulatorController(t, nil)
	ctx := context.Background()
	src, err := cs.CreateVolume(ctx, createReq("pvc-src", 1, nfsClass()))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap", SourceVolumeId: src.Volume.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	restore := createReq("pvc-restore", 1, nfsClass())
	restore.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.Snapshot.SnapshotId}}}
	clone := createReq("pvc-clone", 1, nfsClass())
	clone.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.Volume.VolumeId}}}
	var made []string
	for _, req := range []*csi.CreateVolumeRequest{restore, clone} {
		out, err := cs.CreateVolume(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", req.Name, err)
		}
		made = append(made, out.Volume.VolumeId)
	}
	c, _ := cs.clouds.ForSecrets(ctx, nil)
	snaps, err := c.ListShareSnapshots(ctx, openstack.ShareListOpts{})
	if err != nil || len(snaps.Items) != 1 {
		t.Fatalf("snapshots %+v (%v), want only the user's", snaps.Items, err)
	}
	if _, err := cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap.Snapshot.SnapshotId}); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(made, src.Volume.VolumeId) {
		if _, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if page, _ := c.ListShares(ctx, openstack.ShareListOpts{}); len(page.Items) != 0 {
		t.Errorf("shares left: %+v", page.Items)
	}
	_ = emu
}
