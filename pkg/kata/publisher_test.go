package kata

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
)

const testVolumeID = "01234567-89ab-cdef-0123-456789abcdef"

// env is one node with a Kata-enabled publisher, a fake API server holding
// a Kata pod, and (for root tests) a staged loop device.
type env struct {
	t        *testing.T
	p        *Publisher
	api      *fakeAPI
	root     string
	sockDirs []string
	staging  string
	target   string
	dev      *loopDevice
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{
		t:       t,
		api:     newFakeAPI(t),
		root:    filepath.Join(base, "direct-volumes"),
		staging: filepath.Join(base, "plugins/kubernetes.io/csi/cinder.csi.openstack.org/abc/globalmount"),
		target:  filepath.Join(base, "pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount"),
	}
	sock := shortTempDir(t)
	e.sockDirs = []string{filepath.Join(sock, "vc"), filepath.Join(sock, "rs")}
	e.api.addRuntimeClass("kata-qemu", "kata-qemu", nil)
	pod := testPod("app", "uid-1", "kata-qemu")
	fsGroup := int64(2000)
	policy := corev1.FSGroupChangeOnRootMismatch
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: &fsGroup, FSGroupChangePolicy: &policy}
	e.api.addPod(pod)
	yes := true
	p, err := New(context.Background(), Options{
		Enabled: true, NodeOptIn: &yes, KubeClient: e.api.client(),
		RecordRoot: e.root, ShimSocketDirs: e.sockDirs, RuntimeHandlerPrefix: DefaultRuntimeHandlerPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// withStagedDevice adds a loop device formatted with fstype, mounted at
// staging, holding a file.
func (e *env) withStagedDevice(fstype string) *env {
	e.t.Helper()
	size := 64
	if fstype == "xfs" {
		size = 320 // mkfs.xfs refuses filesystems under 300 MiB
	}
	e.dev = newLoopDevice(e.t, size, testVolumeID)
	stage(e.t, e.dev, fstype, e.staging)
	if err := os.WriteFile(filepath.Join(e.staging, "data.txt"), []byte("precious"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { unmountAllAt(e.staging) })
	return e
}

func (e *env) publishReq(mutate ...func(*csi.NodePublishVolumeRequest)) *csi.NodePublishVolumeRequest {
	req := &csi.NodePublishVolumeRequest{
		VolumeId:          testVolumeID,
		StagingTargetPath: e.staging,
		TargetPath:        e.target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{MountFlags: []string{"noatime", "bind", "rw"}}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		},
		VolumeContext: podContext("app", "uid-1"),
	}
	for _, m := range mutate {
		m(req)
	}
	return req
}

func (e *env) publish(mutate ...func(*csi.NodePublishVolumeRequest)) error {
	_, err := e.p.Publish(context.Background(), e.publishReq(mutate...), e.dev.link)
	return err
}

func (e *env) unpublish() error {
	_, err := e.p.Unpublish(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: testVolumeID, TargetPath: e.target})
	return err
}

// nodeUnpublish is what the node server does: Kata's unpublish while a
// record holds the target, else remove the (empty) target.
func (e *env) nodeUnpublish() error {
	if e.p.Holds(e.target) {
		return e.unpublish()
	}
	return removeDir(e.target)
}

// wantCode checks the code the node server answers for err: a status from
// the node server as it is, a kataerr by the CSI layer's one mapping.
func wantCode(t *testing.T, err error, code codes.Code, mention string) {
	t.Helper()
	if got := cinder.CodeForError(err); got != code {
		t.Fatalf("error = %v, want code %s, got %s", err, code, got)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Fatalf("error = %v, want it to mention %q", err, mention)
	}
}

// deviceMounts lists where the loop device is mounted.
func (e *env) deviceMounts() []string {
	e.t.Helper()
	d, err := blockDevice(e.dev.node)
	if err != nil {
		e.t.Fatal(err)
	}
	points, err := e.p.host.mountsOf(d)
	if err != nil {
		e.t.Fatal(err)
	}
	return points
}

// assertPublished checks the published state: a complete record, the
// device mounted nowhere on the host, an empty target directory.
func (e *env) assertPublished(fstype string) kataMountInfo {
	e.t.Helper()
	records := decodeAsKata(e.t, e.root)
	mi, ok := records[e.target]
	if !ok || len(records) != 1 {
		e.t.Fatalf("records %v, want one for %s", records, e.target)
	}
	if mi.Device != e.dev.link || mi.FsType != fstype {
		e.t.Errorf("record device %s fstype %s, want %s %s", mi.Device, mi.FsType, e.dev.link, fstype)
	}
	if m := e.deviceMounts(); len(m) != 0 {
		e.t.Fatalf("device still mounted on the host at %v while published", m)
	}
	entries, err := os.ReadDir(e.target)
	if err != nil || len(entries) != 0 {
		e.t.Fatalf("target %s: %v entries, %v; want an empty directory", e.target, entries, err)
	}
	if st, _ := os.Stat(e.target); st.Mode().Perm() != 0o750 {
		e.t.Errorf("target mode %v", st.Mode().Perm())
	}
	return mi
}

// assertRestored checks the state after unpublish: staging mounts the
// device exactly once with the data intact, no record, no target.
func (e *env) assertRestored() {
	e.t.Helper()
	if m := e.deviceMounts(); len(m) != 1 || m[0] != canonical(e.staging) {
		e.t.Fatalf("device mounted at %v, want only staging %s", m, e.staging)
	}
	data, err := os.ReadFile(filepath.Join(e.staging, "data.txt"))
	if err != nil || string(data) != "precious" {
		e.t.Fatalf("staging data %q, %v", data, err)
	}
	if l, _ := e.p.store.List(); len(l) != 0 {
		e.t.Fatalf("records left: %+v", l)
	}
	if _, err := os.Stat(e.target); !errors.Is(err, fs.ErrNotExist) {
		e.t.Fatalf("target still exists: %v", err)
	}
	if e.p.HoldsVolume(testVolumeID) {
		e.t.Fatal("HoldsVolume after unpublish")
	}
}

func TestPublishHandsTheDeviceToKataAndUnpublishRestoresStaging(t *testing.T) {
	for _, fstype := range []string{"ext4", "xfs"} {
		t.Run(fstype, func(t *testing.T) {
			e := newEnv(t).withStagedDevice(fstype)
			if err := e.publish(); err != nil {
				t.Fatal(err)
			}
			mi := e.assertPublished(fstype)
			// The record's exact path and content.
			dir := filepath.Join(e.root, encodeForTest(e.target))
			if st, err := os.Stat(filepath.Join(dir, "mountInfo.json")); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("record file: %v %v", st, err)
			}
			if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
				t.Errorf("record dir mode %v", st.Mode().Perm())
			}
			wantOpts, wantStage := "noatime", `["noatime","rw"]`
			if fstype == "xfs" {
				wantOpts, wantStage = "noatime,nouuid", `["noatime","rw","nouuid"]`
			}
			if strings.Join(mi.Options, ",") != wantOpts {
				t.Errorf("options %v, want %s (no bind, no rw)", mi.Options, wantOpts)
			}
			wantMeta := map[string]string{
				MetaVolumeID: testVolumeID, MetaStagingPath: e.staging, MetaStageFSType: fstype,
				MetaStageOptions: wantStage, "fsGroup": "2000", "fsGroupChangePolicy": "OnRootMismatch",
			}
			if len(mi.Metadata) != len(wantMeta) {
				t.Errorf("metadata %v, want %v", mi.Metadata, wantMeta)
			}
			for k, v := range wantMeta {
				if mi.Metadata[k] != v {
					t.Errorf("metadata[%s] = %q, want %q", k, mi.Metadata[k], v)
				}
			}
			if !e.p.Holds(e.target) || !e.p.HoldsVolume(testVolumeID) || e.p.RecordCount() != 1 {
				t.Fatal("record not reported as held")
			}
			if err := e.unpublish(); err != nil {
				t.Fatal(err)
			}
			e.assertRestored()
		})
	}
}

func encodeForTest(p string) string {
	s, _ := EncodePath(p)
	return s
}

func TestPublishRetriesAreIdempotent(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	for i := 0; i < 3; i++ {
		if err := e.publish(); err != nil {
			t.Fatalf("publish #%d: %v", i+1, err)
		}
	}
	e.assertPublished("ext4")
	// The same target with a different record is a different publication.
	err := e.publish(func(r *csi.NodePublishVolumeRequest) { r.Readonly = true })
	wantCode(t, err, codes.AlreadyExists, "different Kata direct-volume record")
	e.assertPublished("ext4")
	for i := 0; i < 2; i++ {
		if err := e.nodeUnpublish(); err != nil {
			t.Fatalf("unpublish #%d: %v", i+1, err)
		}
	}
	e.assertRestored()
}

func TestUnpublishRefusesAnotherVolumesRecord(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	if err := e.publish(); err != nil {
		t.Fatal(err)
	}
	const other = "fedcba98-7654-4321-8fed-cba987654321"
	_, err := e.p.Unpublish(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: other, TargetPath: e.target})
	wantCode(t, err, codes.FailedPrecondition, "is volume "+testVolumeID)
	e.assertPublished("ext4")
	if err := e.nodeUnpublish(); err != nil {
		t.Fatal(err)
	}
	e.assertRestored()
}

func TestPublishReadOnlyAddsRo(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	if err := e.publish(func(r *csi.NodePublishVolumeRequest) {
		r.Readonly = true
		r.VolumeCapability.GetMount().MountFlags = []string{"ro", "discard"}
	}); err != nil {
		t.Fatal(err)
	}
	mi := e.assertPublished("ext4")
	if strings.Join(mi.Options, ",") != "discard,ro" {
		t.Fatalf("options %v, want [discard ro]", mi.Options)
	}
	if err := e.unpublish(); err != nil {
		t.Fatal(err)
	}
	e.assertRestored()
}

func TestPublishRefusalsChangeNothing(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	otherTarget := filepath.Join(filepath.Dir(filepath.Dir(e.target)), "pv-2", "mount")
	for _, tc := range []struct {
		name    string
		mutate  func(*csi.NodePublishVolumeRequest)
		code    codes.Code
		mention string
	}{
		{"ReadWriteOnce", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
		}, codes.FailedPrecondition, "ReadWriteOncePod"},
		{"ReadWriteMany", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
		}, codes.FailedPrecondition, "ReadWriteOncePod"},
		{"block access", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}, codes.FailedPrecondition, "filesystem access type"},
		{"target too long", func(r *csi.NodePublishVolumeRequest) {
			r.TargetPath = "/" + strings.Repeat("x", MaxTargetPathLen)
		}, codes.InvalidArgument, "too long"},
		{"fstype mismatch", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().FsType = "xfs"
		}, codes.FailedPrecondition, "ext4 filesystem"},
		{"pod recreated", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[PodUIDKey] = "uid-old"
		}, codes.Unavailable, "recreated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.publish(tc.mutate), tc.code, tc.mention)
			if l, _ := e.p.store.List(); len(l) != 0 {
				t.Fatalf("records written: %+v", l)
			}
			if m := e.deviceMounts(); len(m) != 1 {
				t.Fatalf("staging changed: device mounted at %v", m)
			}
		})
	}

	t.Run("device mounted elsewhere", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "bind")
		if err := os.MkdirAll(other, 0o750); err != nil {
			t.Fatal(err)
		}
		run(t, "mount", "--bind", e.staging, other)
		defer unmountAllAt(other)
		wantCode(t, e.publish(), codes.FailedPrecondition, "also mounted at "+other)
		if l, _ := e.p.store.List(); len(l) != 0 {
			t.Fatalf("records written: %+v", l)
		}
	})

	t.Run("same volume at another target", func(t *testing.T) {
		if err := e.publish(); err != nil {
			t.Fatal(err)
		}
		err := e.publish(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = otherTarget })
		wantCode(t, err, codes.FailedPrecondition, "already published to a Kata guest at "+e.target)
		if e.p.Holds(otherTarget) {
			t.Fatal("second record written")
		}
		if err := e.unpublish(); err != nil {
			t.Fatal(err)
		}
		e.assertRestored()
	})
}

func TestPublishFormatsABlankUnstagedDevice(t *testing.T) {
	e := newEnv(t)
	e.dev = newLoopDevice(t, 64, testVolumeID)
	t.Cleanup(func() { unmountAllAt(e.staging) })
	if err := e.publish(); err != nil {
		t.Fatal(err)
	}
	e.assertPublished("ext4")
	if f, err := e.p.host.diskFormat(e.dev.node); err != nil || f != "ext4" {
		t.Fatalf("device format %q, %v", f, err)
	}
	if err := e.unpublish(); err != nil {
		t.Fatal(err)
	}
	if m := e.deviceMounts(); len(m) != 1 || m[0] != canonical(e.staging) {
		t.Fatalf("device mounted at %v after unpublish", m)
	}
}

// TestPublishCrashPoints stops Publish after each step, as a killed plugin
// would, then lets kubelet either retry the publish or give up and
// unpublish. Both must converge.
func TestPublishCrashPoints(t *testing.T) {
	crash := errors.New("plugin killed")
	for _, step := range []string{"before-rename", stepRecordWritten, stepStagingUnmount, stepTargetCreated} {
		for _, then := range []string{"retry", "give-up"} {
			t.Run(step+"/"+then, func(t *testing.T) {
				e := newEnv(t).withStagedDevice("ext4")
				if step == "before-rename" {
					e.p.store.beforeRename = func() error { return crash }
				} else {
					e.p.failAt = func(s string) error {
						if s == step {
							return crash
						}
						return nil
					}
				}
				if err := e.publish(); err == nil || !strings.Contains(err.Error(), crash.Error()) {
					t.Fatalf("publish = %v, want the injected crash", err)
				}
				e.p.failAt, e.p.store.beforeRename = nil, nil
				if then == "retry" {
					if err := e.publish(); err != nil {
						t.Fatalf("retry: %v", err)
					}
					e.assertPublished("ext4")
				}
				if err := e.nodeUnpublish(); err != nil {
					t.Fatalf("unpublish: %v", err)
				}
				e.assertRestored()
			})
		}
	}
}

// TestUnpublishCrashPoints stops Unpublish after each step; kubelet's retry
// must converge, with staging mounted once and the data intact.
func TestUnpublishCrashPoints(t *testing.T) {
	crash := errors.New("plugin killed")
	for _, step := range []string{stepStagingRemount, stepRecordRemoved} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t).withStagedDevice("ext4")
			if err := e.publish(); err != nil {
				t.Fatal(err)
			}
			e.p.failAt = func(s string) error {
				if s == step {
					return crash
				}
				return nil
			}
			if err := e.unpublish(); !errors.Is(err, crash) {
				t.Fatalf("unpublish = %v, want the injected crash", err)
			}
			e.p.failAt = nil
			if err := e.nodeUnpublish(); err != nil {
				t.Fatalf("retry: %v", err)
			}
			e.assertRestored()
		})
	}
}

func TestUnpublishWithTheDeviceGoneDropsTheRecord(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	if err := e.publish(); err != nil {
		t.Fatal(err)
	}
	// Detached behind our back: udev removed the by-id link.
	if err := os.Remove(e.dev.link); err != nil {
		t.Fatal(err)
	}
	if err := e.unpublish(); err != nil {
		t.Fatal(err)
	}
	if e.p.Holds(e.target) {
		t.Fatal("record survived")
	}
	if _, err := os.Stat(e.target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("target survived: %v", err)
	}
}

func TestUnpublishKeepsDataWrittenOnTheHost(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	if err := e.publish(); err != nil {
		t.Fatal(err)
	}
	// A runtime that ignored the record let the container write here.
	if err := os.WriteFile(filepath.Join(e.target, "oops"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.unpublish(), codes.FailedPrecondition, "ignored the direct-volume record")
	if _, err := os.Stat(filepath.Join(e.target, "oops")); err != nil {
		t.Fatalf("host data removed: %v", err)
	}
	if m := e.deviceMounts(); len(m) != 1 {
		t.Fatalf("staging not restored: %v", m)
	}
}

func TestNewCleansStaleTemps(t *testing.T) {
	root := t.TempDir()
	stale := filepath.Join(root, ".tmp-42")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{RecordRoot: root}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temp survived New: %v", err)
	}
}

// A record written while the feature was on is finished by a retry after
// it was switched off: the disabled publisher has no pod lookups.
func TestDisabledPublisherFinishesAnExistingRecord(t *testing.T) {
	e := newEnv(t).withStagedDevice("ext4")
	e.p.failAt = func(s string) error {
		if s == stepRecordWritten {
			return errors.New("plugin killed")
		}
		return nil
	}
	if err := e.publish(); err == nil {
		t.Fatal("publish succeeded")
	}
	off, err := New(context.Background(), Options{RecordRoot: e.root, ShimSocketDirs: e.sockDirs})
	if err != nil {
		t.Fatal(err)
	}
	e.p = off
	req := e.publishReq()
	if ok, err := off.Wants(context.Background(), req); !ok || err != nil {
		t.Fatalf("Wants = %v, %v", ok, err)
	}
	if err := e.publish(); err != nil {
		t.Fatalf("retry with the feature off: %v", err)
	}
	if mi := e.assertPublished("ext4"); mi.Metadata[MetaFSGroup] != "2000" {
		t.Fatalf("fsGroup lost: %v", mi.Metadata)
	}
	if err := e.nodeUnpublish(); err != nil {
		t.Fatal(err)
	}
	e.assertRestored()
}

// Kata's Go agent refuses a record whose fsGroup is not above 0, so a pod
// with fsGroup 0 (or a negative one) gets no fsGroup and no policy.
func TestBuildRecordLeavesOutFSGroupNotAboveZero(t *testing.T) {
	req := &csi.NodePublishVolumeRequest{
		VolumeId: testVolumeID, TargetPath: "/t", StagingTargetPath: "/s",
		VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}},
	}
	for _, tc := range []struct {
		fsGroup   int64
		wantGroup string
	}{{-1, ""}, {0, ""}, {1, "1"}, {2000, "2000"}} {
		g := tc.fsGroup
		mi := buildRecord(req, "/dev/vdb", "ext4", &podFacts{fsGroup: &g, fsGroupChangePolicy: "OnRootMismatch"})
		got, has := mi.Metadata[MetaFSGroup]
		_, hasPolicy := mi.Metadata[MetaFSGroupChangePolicy]
		if got != tc.wantGroup || has != (tc.wantGroup != "") || hasPolicy != has {
			t.Errorf("fsGroup %d: record metadata %v, want fsGroup %q with its policy only when set", tc.fsGroup, mi.Metadata, tc.wantGroup)
		}
	}
}
