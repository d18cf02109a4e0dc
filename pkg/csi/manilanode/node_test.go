package manilanode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	shareA   = "6b3f1c2e-8a4d-4e5f-9a6b-7c8d9e0f1a2b"
	shareB   = "0d1e2f3a-4b5c-4d6e-8f70-819203a4b5c6"
	testKey  = "AQBxV1xlAAAAABAAm5Zz0pJ8k3Yt4sQxVb7nGg=="
	nfsExpA  = "10.0.0.5:/volumes/_nogroup/a/uuid-a"
	nfsExpB  = "10.0.0.5:/volumes/_nogroup/b/uuid-b"
	cephExpA = "10.0.0.7:6789,10.0.0.8:6789:/volumes/_nogroup/a/uuid-a"
)

type testEnv struct {
	t    *testing.T
	root string
	ns   *NodeServer
	fm   *fakeMounter
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	root := t.TempDir()
	fm := &fakeMounter{}
	ns, err := NewNodeServer(NodeOptions{NodeName: "node-1", NodeAddresses: []string{"10.0.0.10"}, KubeletRootDir: root, Mounter: fm})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, root: ns.root.Dir(), ns: ns, fm: fm}
}

func (e *testEnv) staging(vol string) string {
	return filepath.Join(e.root, "plugins/kubernetes.io/csi", DefaultDriverName, vol, "globalmount")
}

func (e *testEnv) target(vol string) string {
	return filepath.Join(e.root, "pods/pod-"+vol[:4], "volumes/kubernetes.io~csi/pv/mount")
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode, flags ...string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{MountFlags: flags}},
	}
}

var rwx = mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)

func nfsContext(export string) map[string]string {
	return map[string]string{KeyProtocol: ProtocolNFS, KeyExportLocation: export}
}

func cephContext(export string) map[string]string {
	return map[string]string{KeyProtocol: ProtocolCephFS, KeyExportLocation: export, KeyCephClientID: "pvc-a"}
}

func (e *testEnv) stageReq(vol string, vctx map[string]string) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: e.staging(vol), VolumeCapability: rwx, VolumeContext: vctx}
}

func (e *testEnv) stage(vol string, vctx map[string]string) error {
	_, err := e.ns.NodeStageVolume(context.Background(), e.stageReq(vol, vctx))
	return err
}

func (e *testEnv) publish(vol, staging, target string, readOnly bool) error {
	_, err := e.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: vol, StagingTargetPath: staging, TargetPath: target, VolumeCapability: rwx, Readonly: readOnly,
	})
	return err
}

func (e *testEnv) unpublish(vol, target string) error {
	_, err := e.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target})
	return err
}

func (e *testEnv) unstage(vol, staging string) error {
	_, err := e.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging})
	return err
}

func (e *testEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v (%v), want %v", status.Code(err), err, code)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("message %q does not contain %q", err.Error(), contains)
	}
}

func TestNFSStagePublishUnpublishUnstageIsIdempotentAndLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	staging, target := e.staging(shareA), e.target(shareA)
	for range 2 {
		e.must(e.stage(shareA, nfsContext(nfsExpA)))
		e.must(e.publish(shareA, staging, target, false))
	}
	if n, m := e.fm.mountsAt(staging), e.fm.mountsAt(target); n != 1 || m != 1 {
		t.Fatalf("mounts at staging/target = %d/%d after repeats, want 1/1", n, m)
	}
	for range 2 {
		e.must(e.unpublish(shareA, target))
		e.must(e.unstage(shareA, staging))
	}
	if n := len(e.fm.table); n != 0 {
		t.Fatalf("%d mounts left: %v", n, e.fm.table)
	}
	for _, p := range []string{staging, target, e.ns.store.recordPath(shareA)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (err %v)", p, err)
		}
	}
}

func TestCephFSKeyComesFromStageSecretsInA0600FileRemovedAtUnstage(t *testing.T) {
	e := newTestEnv(t)
	req := e.stageReq(shareA, cephContext(cephExpA))
	req.Secrets = map[string]string{KeyUserKey: testKey}
	req.PublishContext = map[string]string{KeyUserKey: "AQBotherkeyfromthepublishcontext000000=="}
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	e.must(err)
	keyFile := e.ns.store.keyFile(shareA)
	fi, err := os.Stat(keyFile)
	e.must(err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(keyFile); string(data) != testKey {
		t.Errorf("key file holds %q, want the stage secret's key", data)
	}
	for _, c := range e.fm.calls {
		if strings.Contains(c, testKey) {
			t.Errorf("a mount call carries the key: %q", c)
		}
	}
	e.must(e.unstage(shareA, e.staging(shareA)))
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file left after unstage (err %v)", err)
	}
}

func TestCephFSKeyFromPublishContextWhenNoStageSecret(t *testing.T) {
	e := newTestEnv(t)
	req := e.stageReq(shareA, cephContext(cephExpA))
	req.PublishContext = map[string]string{KeyUserKey: testKey}
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	e.must(err)
	if data, _ := os.ReadFile(e.ns.store.keyFile(shareA)); string(data) != testKey {
		t.Errorf("key file holds %q, want the publish context's key", data)
	}
}

func TestCephFSWithoutAKeyIsInvalidAndMountsNothing(t *testing.T) {
	e := newTestEnv(t)
	err := e.stage(shareA, cephContext(cephExpA))
	wantCode(t, err, codes.InvalidArgument, "node-stage-secret-name")
	if len(e.fm.calls) != 0 {
		t.Fatalf("mount calls: %v", e.fm.calls)
	}
}

func TestStageOverAMountFromAnotherSourceIsFailedPrecondition(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	err := e.stage(shareA, nfsContext(nfsExpB))
	wantCode(t, err, codes.FailedPrecondition, nfsExpB)

	e.fm.foreign(e.staging(shareB), "/dev/sdb1")
	err = e.stage(shareB, nfsContext(nfsExpB))
	wantCode(t, err, codes.FailedPrecondition, "not volume "+shareB+"'s stage mount")
	if n := e.fm.mountsAt(e.staging(shareB)); n != 1 {
		t.Fatalf("%d mounts at B's staging path, want the foreign one only", n)
	}
}

func TestStageAfterACrashBetweenMountAndRecordAdoptsTheMount(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	rec, err := e.ns.store.load(shareA)
	e.must(err)
	rec.Mount = nil // the crash: mounted, record not completed
	e.must(e.ns.store.save(rec))
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	if rec, _ = e.ns.store.load(shareA); rec.Mount == nil {
		t.Fatal("record not completed by the retry")
	}
	if n := e.fm.mountsAt(e.staging(shareA)); n != 1 {
		t.Fatalf("%d mounts at staging, want 1", n)
	}
}

func TestStageAdoptsAnNFSMountWhoseRecordWasLost(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	e.must(os.Remove(e.ns.store.recordPath(shareA)))
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	e.must(e.publish(shareA, e.staging(shareA), e.target(shareA), false))
}

func TestAFailedMountLeavesNoRecordOrKeyFile(t *testing.T) {
	e := newTestEnv(t)
	e.fm.fail = errors.New("mount error 13 = Permission denied")
	req := e.stageReq(shareA, cephContext(cephExpA))
	req.Secrets = map[string]string{KeyUserKey: testKey}
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	wantCode(t, err, codes.FailedPrecondition, "access rule")
	for _, p := range []string{e.ns.store.keyFile(shareA), e.ns.store.recordPath(shareA)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a failed mount", p)
		}
	}
}

func TestPublishRefusesAStagingPathThatIsNotThisVolumes(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	e.must(e.stage(shareB, nfsContext(nfsExpB)))
	cases := []struct {
		name, staging string
		code          codes.Code
		contains      string
	}{
		{"another volume's staging path", e.staging(shareB), codes.FailedPrecondition, "is staged at"},
		{"the host root", "/", codes.InvalidArgument, "outside the kubelet root"},
		{"/etc", "/etc", codes.InvalidArgument, "outside the kubelet root"},
		{"/proc/self", "/proc/self", codes.InvalidArgument, "system path"},
		{"dot-dot escape", e.root + "/pods/../../etc", codes.InvalidArgument, `".."`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := e.target(shareA)
			wantCode(t, e.publish(shareA, c.staging, target, false), c.code, c.contains)
			if n := e.fm.mountsAt(target); n != 0 {
				t.Fatalf("%d mounts at the target", n)
			}
		})
	}
}

func TestPathsThroughASymlinkAreRefused(t *testing.T) {
	e := newTestEnv(t)
	outside := t.TempDir()
	link := filepath.Join(e.root, "pods", "evil")
	e.must(os.MkdirAll(filepath.Dir(link), 0o750))
	e.must(os.Symlink(outside, link))
	req := e.stageReq(shareA, nfsContext(nfsExpA))
	req.StagingTargetPath = filepath.Join(link, "globalmount")
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	wantCode(t, err, codes.InvalidArgument, "symlink")
	if len(e.fm.calls) != 0 {
		t.Fatalf("mount calls: %v", e.fm.calls)
	}
}

func TestUnpublishAndUnstageLeaveAnotherVolumesMounts(t *testing.T) {
	e := newTestEnv(t)
	for _, v := range []struct{ id, exp string }{{shareA, nfsExpA}, {shareB, nfsExpB}} {
		e.must(e.stage(v.id, nfsContext(v.exp)))
		e.must(e.publish(v.id, e.staging(v.id), e.target(v.id), false))
	}
	wantCode(t, e.unpublish(shareB, e.target(shareA)), codes.FailedPrecondition, "which is not volume "+shareB)
	wantCode(t, e.unstage(shareA, e.staging(shareB)), codes.FailedPrecondition, "not volume "+shareA+"'s stage mount")
	if e.fm.mountsAt(e.target(shareA)) != 1 || e.fm.mountsAt(e.staging(shareB)) != 1 {
		t.Fatalf("a mount of the other volume was removed: %v", e.fm.table)
	}
	e.fm.foreign(filepath.Join(e.root, "pods/x/mount"), "/dev/sdc")
	wantCode(t, e.unpublish(shareA, filepath.Join(e.root, "pods/x/mount")), codes.FailedPrecondition, "/dev/sdc")
}

func TestPublishReadOnlyAndAgainWritableIsAlreadyExists(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	e.must(e.publish(shareA, e.staging(shareA), e.target(shareA), true))
	if got := e.fm.calls[len(e.fm.calls)-1]; !strings.HasSuffix(got, "ro=true") {
		t.Fatalf("last call %q, want a read-only bind", got)
	}
	e.must(e.publish(shareA, e.staging(shareA), e.target(shareA), true))
	wantCode(t, e.publish(shareA, e.staging(shareA), e.target(shareA), false), codes.AlreadyExists, "read-only true")
}

func TestPublishMountsAVanishedStageMountAgain(t *testing.T) {
	e := newTestEnv(t)
	req := e.stageReq(shareA, cephContext(cephExpA))
	req.Secrets = map[string]string{KeyUserKey: testKey}
	_, err := e.ns.NodeStageVolume(context.Background(), req)
	e.must(err)
	e.must(e.fm.Unmount(e.staging(shareA))) // the daemon died and its mount went away
	e.must(e.publish(shareA, e.staging(shareA), e.target(shareA), false))
	if e.fm.mountsAt(e.staging(shareA)) != 1 || e.fm.mountsAt(e.target(shareA)) != 1 {
		t.Fatalf("stage and publish mounts not both back: %v", e.fm.table)
	}
}

func TestStatsAnswerNotFoundForAPathThatIsNotThisVolumes(t *testing.T) {
	e := newTestEnv(t)
	for _, v := range []struct{ id, exp string }{{shareA, nfsExpA}, {shareB, nfsExpB}} {
		e.must(e.stage(v.id, nfsContext(v.exp)))
		e.must(e.publish(v.id, e.staging(v.id), e.target(v.id), false))
	}
	for _, p := range []string{"/", "relative/path", e.target(shareB), e.staging(shareB), filepath.Join(e.root, "nothing")} {
		_, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: shareA, VolumePath: p})
		wantCode(t, err, codes.NotFound, "")
	}
	resp, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: shareA, VolumePath: e.target(shareA)})
	e.must(err)
	if len(resp.GetUsage()) != 2 {
		t.Fatalf("usage %v", resp.GetUsage())
	}
}

func TestRequestsWithBadIDsPathsOrFlagsAreInvalidAndMountNothing(t *testing.T) {
	e := newTestEnv(t)
	long := "/" + strings.Repeat("a", maxPathLength)
	cases := []struct {
		name     string
		mutate   func(*csi.NodeStageVolumeRequest)
		contains string
	}{
		{"id over 255 bytes", func(r *csi.NodeStageVolumeRequest) { r.VolumeId = strings.Repeat("a", 256) }, "255"},
		{"id with a newline", func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "a\nb" }, "characters"},
		{"id with a slash", func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "../x" }, "characters"},
		{"path over PATH_MAX", func(r *csi.NodeStageVolumeRequest) { r.StagingTargetPath = long }, "PATH_MAX"},
		{"flag remount", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "remount") }, "remount"},
		{"flag bind", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "bind") }, "bind"},
		{"flag rbind", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "rbind") }, "rbind"},
		{"flag --make-shared", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "--make-shared") }, "command-line switch"},
		{"flag shared", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "shared") }, "propagation"},
		{"flag hidden after a comma", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "hard,remount") }, "remount"},
		{"unknown flag", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "x-systemd.automount") }, "allow-list"},
		{"numeric flag with text", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap(1, "timeo=1;reboot") }, "value"},
		{"block access", func(r *csi.NodeStageVolumeRequest) {
			r.VolumeCapability = &csi.VolumeCapability{AccessMode: rwx.AccessMode, AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}
		}, "block"},
		{"NFS version 5", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext[KeyNFSVersion] = "5" }, "not supported"},
		{"two NFS servers", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext[KeyExportLocation] = "a:1,b:1:/x" }, "one"},
		{"export path with ..", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext[KeyExportLocation] = "a:/x/../y" }, "clean"},
		{"share id not a UUID", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext[KeyShareID] = "x" }, "UUID"},
		{"unknown protocol", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext[KeyProtocol] = "CIFS" }, "NFS or CEPHFS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := e.stageReq(shareA, nfsContext(nfsExpA))
			c.mutate(req)
			_, err := e.ns.NodeStageVolume(context.Background(), req)
			wantCode(t, err, codes.InvalidArgument, c.contains)
			if strings.ContainsAny(status.Convert(err).Message(), "\n\x7f") {
				t.Errorf("message carries a raw control character: %q", err)
			}
			if len(e.fm.calls) != 0 {
				t.Fatalf("mount calls: %v", e.fm.calls)
			}
		})
	}
}

func TestAConcurrentCallOnTheSameVolumeIsAborted(t *testing.T) {
	e := newTestEnv(t)
	unlock, err := e.ns.lock(shareA)
	e.must(err)
	defer unlock()
	wantCode(t, e.stage(shareA, nfsContext(nfsExpA)), codes.Aborted, shareA)
	e.must(e.stage(shareB, nfsContext(nfsExpB)))
}

func TestASingleWriterVolumeIsPublishedAtOneTargetOnly(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	rwop := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	publish := func(target string) error {
		_, err := e.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
			VolumeId: shareA, StagingTargetPath: e.staging(shareA), TargetPath: target, VolumeCapability: rwop,
		})
		return err
	}
	first, second := e.target(shareA), filepath.Join(e.root, "pods/other/mount")
	e.must(publish(first))
	e.must(publish(first))
	wantCode(t, publish(second), codes.FailedPrecondition, "SINGLE_NODE_SINGLE_WRITER")
	if e.fm.mountsAt(second) != 0 {
		t.Fatal("the second target was mounted")
	}
	e.must(e.unpublish(shareA, first))
	e.must(publish(second))
}

func TestAnUnfinishedStageRecordDoesNotAdoptAForeignMount(t *testing.T) {
	e := newTestEnv(t)
	staging := e.staging(shareA)
	spec := specFor(t, nfsContext(nfsExpA))
	e.must(e.ns.store.save(&stageRecord{VolumeID: shareA, StagingPath: staging, Spec: *spec}))
	e.fm.foreign(staging, "/dev/sdb1")
	wantCode(t, e.stage(shareA, nfsContext(nfsExpA)), codes.FailedPrecondition, "/dev/sdb1")
	wantCode(t, e.unstage(shareA, staging), codes.FailedPrecondition, "/dev/sdb1")
	if e.fm.mountsAt(staging) != 1 {
		t.Fatal("the foreign mount was removed")
	}
}

func TestVolumeHealthReportsAPathThatDoesNotHoldTheVolume(t *testing.T) {
	e := newTestEnv(t)
	e.must(e.stage(shareA, nfsContext(nfsExpA)))
	e.must(e.publish(shareA, e.staging(shareA), e.target(shareA), false))
	health := func(p string) []*csi.VolumeHealth_VolumeHealthEntry {
		resp, err := e.ns.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: shareA, VolumePublishPath: p})
		e.must(err)
		return resp.GetVolumeHealth().GetHealthStatuses()
	}
	if h := health(e.target(shareA)); len(h) != 0 {
		t.Fatalf("healthy publish reports %v", h)
	}
	e.must(e.fm.Unmount(e.target(shareA)))
	h := health(e.target(shareA))
	if len(h) != 1 || h[0].GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE || h[0].GetReason() != healthNotMounted {
		t.Fatalf("unmounted publish reports %v", h)
	}
}
