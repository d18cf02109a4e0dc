package cinder

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/device/devicetest"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

// These tests send the node service what a hostile caller would (issue 16)
// on real loop devices. A regression could mount over host directories or
// unmount the host's mounts, so each test re-runs itself in a private
// mount namespace (unshare --mount --propagation private): every mount it
// makes, right or wrong, dies with that namespace, and the decoys it aims
// at are its own directories. The real /etc and /proc paths are only ever
// sent to be refused by their shape, before anything is touched.

const isolatedEnv = "CINDER_NODE_TRUST_ISOLATED"

// isolated reports whether the test runs inside its private mount
// namespace. Outside, it re-runs the test there and reports the outcome:
// the caller returns at once when it answers false.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == t.Name() {
		return true
	}
	devicetest.RequireRoot(t, "unshare", "mkfs.ext4", "blkid")
	cmd := osexec.Command("unshare", "--mount", "--propagation", "private", "--",
		os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), isolatedEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "node_trust_test.go") || strings.HasPrefix(strings.TrimSpace(line), "---") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if err != nil {
		t.Fatalf("the isolated run failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the isolated run did not pass:\n%s", out)
	}
	return false
}

// trustEnv is a node with volumes A and B staged and published, plus the
// decoys a hostile request aims at.
type trustEnv struct {
	*hostEnv
	a, b             string // volume ids
	diskB            *devicetest.Disk
	root             string // kubelet root
	decoy            string // an /etc-like directory outside the root
	canary           string // a file in decoy that must survive
	escape           string // a symlink inside the root to decoy
	stagingA, target string
	stagingB, targB  string
}

func newTrustEnv(t *testing.T) *trustEnv {
	t.Helper()
	e := &trustEnv{
		hostEnv: newHostEnv(t, NodeOptions{}),
		a:       "7c0d7c8e-1a2b-4c3d-8e9f-00000000000a",
		b:       "7c0d7c8e-2a2b-4c3d-8e9f-00000000000b",
	}
	e.root = e.h.MountDir
	e.decoy = filepath.Join(t.TempDir(), "etc")
	e.canary = filepath.Join(e.decoy, "passwd")
	e.must(os.MkdirAll(e.decoy, 0o755))
	e.must(os.WriteFile(e.canary, []byte("root:x:0:0\n"), 0o644))
	e.escape = filepath.Join(e.root, "pods", "escape")
	e.must(os.MkdirAll(filepath.Dir(e.escape), 0o755))
	e.must(os.Symlink(e.decoy, e.escape))

	e.h.Plug(t, e.a, 64*mib, devicetest.PlugOptions{})
	e.diskB = e.h.Plug(t, e.b, 64*mib, devicetest.PlugOptions{})
	for _, v := range []string{e.a, e.b} {
		e.must(e.stage(v, mountCap("ext4"), nil, nil))
		e.must(e.publish(v, mountCap("ext4"), false))
	}
	e.stagingA, e.target = e.paths(e.a)
	e.stagingB, e.targB = e.paths(e.b)
	return e
}

// mountSnapshot lists every mount of the namespace.
func mountSnapshot(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			lines = append(lines, f[2]+" "+f[3]+" "+f[4])
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// refusal is one hostile request and what must come back.
type refusal struct {
	name    string
	call    func() error
	code    codes.Code
	mention []string
}

// check runs each refusal and asserts the code, the message, and that the
// mount table, the decoy and the disks are as they were.
func (e *trustEnv) check(t *testing.T, cases []refusal) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := mountSnapshot(t)
			formatB := diskFormat(t, e.diskB.Loop)
			err := c.call()
			wantCode(t, err, c.code, "")
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q does not mention %q", err.Error(), m)
				}
			}
			if strings.ContainsAny(err.Error(), "\n\r\x7f") {
				t.Errorf("message %q carries a raw control character", err.Error())
			}
			if after := mountSnapshot(t); after != before {
				t.Errorf("the mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Stat(e.canary); err != nil {
				t.Errorf("the decoy lost its canary: %v", err)
			}
			if got := diskFormat(t, e.diskB.Loop); got != formatB {
				t.Errorf("volume B's disk went from %q to %q", formatB, got)
			}
			t.Logf("%s: %s: %s", c.name, codeOf(err), err)
		})
	}
}

func (e *trustEnv) publishReq(vol, staging, target string) func() error {
	return func() error {
		_, err := e.ns.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
			VolumeId: vol, StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap("ext4"),
		})
		return err
	}
}

func (e *trustEnv) stageReq(vol, staging string, flags ...string) func() error {
	return func() error {
		_, err := e.ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
			VolumeId: vol, StagingTargetPath: staging, VolumeCapability: mountCap("ext4", flags...),
		})
		return err
	}
}

func (e *trustEnv) unstageReq(vol, staging string) func() error {
	return func() error {
		_, err := e.ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging})
		return err
	}
}

func (e *trustEnv) unpublishReq(vol, target string) func() error {
	return func() error {
		_, err := e.ns.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target})
		return err
	}
}

func (e *trustEnv) statsReq(vol, path string) func() error {
	return func() error {
		_, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: path})
		return err
	}
}

func TestNodePublishBindMountsOnlyTheVolumesOwnStagingPath(t *testing.T) {
	if !isolated(t) {
		return
	}
	e := newTrustEnv(t)
	fresh := filepath.Join(e.root, "pods", "fresh", "mount")
	e.check(t, []refusal{
		{"staging path of another volume", e.publishReq(e.a, e.stagingB, fresh), codes.FailedPrecondition, []string{e.stagingB, "not volume " + e.a}},
		{"staging path is the host root", e.publishReq(e.a, "/", fresh), codes.InvalidArgument, []string{`"/"`, e.root}},
		{"staging path is an /etc-like directory", e.publishReq(e.a, e.decoy, fresh), codes.InvalidArgument, []string{e.decoy, e.root}},
		{"staging path is /etc", e.publishReq(e.a, "/etc", fresh), codes.InvalidArgument, []string{"/etc", e.root}},
		{"target is /proc/self", e.publishReq(e.a, e.stagingA, "/proc/self"), codes.InvalidArgument, []string{"/proc"}},
		{"target through a symlink out of the root", e.publishReq(e.a, e.stagingA, e.escape+"/mnt"), codes.InvalidArgument, []string{"symbolic link"}},
	})
	if _, err := os.Stat(fresh); err == nil {
		t.Errorf("a refused publish created %s", fresh)
	}
}

func TestNodeStageRefusesPathsOutsideTheKubeletRoot(t *testing.T) {
	if !isolated(t) {
		return
	}
	e := newTrustEnv(t)
	const c = "7c0d7c8e-3a2b-4c3d-8e9f-00000000000c"
	e.h.Plug(t, c, 64*mib, devicetest.PlugOptions{})
	e.check(t, []refusal{
		{"staging onto /etc", e.stageReq(c, "/etc"), codes.InvalidArgument, []string{"/etc", e.root}},
		{"staging onto an /etc-like directory", e.stageReq(c, e.decoy), codes.InvalidArgument, []string{e.decoy, e.root}},
		{"staging through a symlink", e.stageReq(c, e.escape), codes.InvalidArgument, []string{"symbolic link"}},
		{"staging below a symlink", e.stageReq(c, e.escape+"/x"), codes.InvalidArgument, []string{"symbolic link"}},
		{"staging with .. escaping", e.stageReq(c, e.root+"/pods/../../"+filepath.Base(filepath.Dir(e.decoy))+"/etc"), codes.InvalidArgument, []string{`".."`}},
		{"staging at /proc/self", e.stageReq(c, "/proc/self"), codes.InvalidArgument, []string{"/proc"}},
		{"staging at /sys", e.stageReq(c, "/sys/kernel"), codes.InvalidArgument, []string{"/sys"}},
		{"staging at /dev", e.stageReq(c, "/dev/shm/x"), codes.InvalidArgument, []string{"/dev"}},
		{"unstaging /etc", e.unstageReq(c, "/etc"), codes.InvalidArgument, []string{"/etc", e.root}},
		{"unstaging the decoy", e.unstageReq(c, e.decoy), codes.InvalidArgument, []string{e.decoy}},
		{"a 10 KB path", e.stageReq(c, e.root+"/"+strings.Repeat("x/", 5000)), codes.InvalidArgument, []string{"too long", "PATH_MAX"}},
		{"a 300-byte component", e.stageReq(c, e.root+"/"+strings.Repeat("x", 300)), codes.InvalidArgument, []string{"NAME_MAX"}},
		{"flag remount", e.stageReq(c, e.root+"/s/c", "remount"), codes.InvalidArgument, []string{"mount_flags", "remount"}},
		{"flag bind", e.stageReq(c, e.root+"/s/c", "bind"), codes.InvalidArgument, []string{"mount_flags", "bind"}},
		{"flag rbind", e.stageReq(c, e.root+"/s/c", "rbind"), codes.InvalidArgument, []string{"mount_flags"}},
		{"flag --make-shared", e.stageReq(c, e.root+"/s/c", "--make-shared"), codes.InvalidArgument, []string{"mount_flags", "command-line"}},
		{"flag rshared", e.stageReq(c, e.root+"/s/c", "rshared"), codes.InvalidArgument, []string{"propagation"}},
		{"flag smuggled after a comma", e.stageReq(c, e.root+"/s/c", "ro,remount"), codes.InvalidArgument, []string{"mount_flags"}},
	})
	if got := diskFormat(t, e.h.DevRoot+"/vdd"); got != "" {
		t.Errorf("volume C's disk holds %q after refused stages, want blank", got)
	}
	// The node still answers: nothing was mounted over /proc/<pid>.
	if _, err := e.ns.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: e.a, VolumePath: e.target}); err != nil {
		t.Fatalf("stats of A after the refusals: %v", err)
	}
}

func TestNodeStageNeverFormatsAnotherVolumesDisk(t *testing.T) {
	if !isolated(t) {
		return
	}
	e := newTrustEnv(t)
	// D is attached and blank; E1 and E2 share their first 20 characters.
	const d = "7c0d7c8e-4a2b-4c3d-8e9f-00000000000d"
	const e1, e2 = "7c0d7c8e-5a2b-4c3d-8e9f-0000000000e1", "7c0d7c8e-5a2b-4c3d-8e9f-0000000000e2"
	diskD := e.h.Plug(t, d, 64*mib, devicetest.PlugOptions{})
	diskE1 := e.h.Plug(t, e1, 64*mib, devicetest.PlugOptions{})
	diskE2 := e.h.Plug(t, e2, 64*mib, devicetest.PlugOptions{NoByID: true})
	// The metadata service lists each attached volume by its full id.
	var devices []metadata.Device
	for _, disk := range []*devicetest.Disk{diskD, diskE1, diskE2} {
		devices = append(devices, metadata.Device{Type: "disk", Bus: "pci", Address: disk.PCIAddress(), Serial: disk.VolumeID})
	}
	e.md.devices = devices
	sharing24 := d[:24] + "ffffffffffff" // a UUID sharing D's first 24 characters
	staging := filepath.Join(e.root, "staging", "hostile")
	e.check(t, []refusal{
		{"id is the first 20 characters of D's", e.stageReq(d[:20], staging), codes.InvalidArgument, []string{"not a Cinder volume id"}},
		{"UUID sharing D's first 24 characters", e.stageReq(sharing24, staging), codes.FailedPrecondition, []string{d, diskD.PCIAddress()}},
		{"two disks share the 20-character serial", e.stageReq(e1, staging), codes.FailedPrecondition, []string{diskE1.Name, diskE2.Name}},
		{"B's disk is mounted for B", e.stageReq(e.b, filepath.Join(e.root, "staging", "second")), codes.FailedPrecondition, []string{"already mounted", e.stagingB}},
	})
	for _, disk := range []*devicetest.Disk{diskD, diskE1, diskE2} {
		if got := diskFormat(t, disk.Loop); got != "" {
			t.Errorf("disk %s of %s holds %q after refused stages, want blank", disk.Name, disk.VolumeID, got)
		}
	}
	// D itself still stages: the check refuses impostors, not the volume.
	e.must(e.stage(d, mountCap("ext4"), nil, nil))
	e.must(e.unstage(d))
}

func TestNodeUnmountsOnlyTheVolumesOwnMounts(t *testing.T) {
	if !isolated(t) {
		return
	}
	e := newTrustEnv(t)
	e.check(t, []refusal{
		{"unpublish B at A's target", e.unpublishReq(e.b, e.target), codes.FailedPrecondition, []string{e.target, "not volume " + e.b}},
		{"unstage A at B's staging path", e.unstageReq(e.a, e.stagingB), codes.FailedPrecondition, []string{e.stagingB, "not volume " + e.a}},
		{"unpublish at /proc/self", e.unpublishReq(e.a, "/proc/self"), codes.InvalidArgument, []string{"/proc"}},
		{"unpublish at the host root", e.unpublishReq(e.a, "/"), codes.InvalidArgument, []string{e.root}},
		{"stats of A at the host root", e.statsReq(e.a, "/"), codes.NotFound, []string{e.root}},
		{"stats of A at B's target", e.statsReq(e.a, e.targB), codes.NotFound, []string{e.targB}},
		{"stats of A at the decoy", e.statsReq(e.a, e.decoy), codes.NotFound, []string{e.decoy}},
		{"id over 255 bytes", e.unpublishReq(strings.Repeat("a", 300), e.target), codes.InvalidArgument, []string{"300 bytes"}},
		{"id with a newline", e.unpublishReq("7c0d7c8e-1a2b-4c3d-8e9f-\n0000000000a", e.target), codes.InvalidArgument, []string{`\n`}},
		{"id with DEL", e.unstageReq("7c0d7c8e-1a2b-4c3d-8e9f-\x7f0000000000a", e.stagingA), codes.InvalidArgument, []string{`\x7f`}},
	})
	for _, p := range []string{e.target, e.targB, e.stagingA, e.stagingB} {
		if n := mountsAt(t, p); n != 1 {
			t.Errorf("%d mounts at %s after the refusals, want 1", n, p)
		}
	}
	// Each volume still unmounts its own.
	for _, v := range []string{e.a, e.b} {
		e.must(e.unpublish(v))
		e.must(e.unstage(v))
	}
}

// FuzzNodeRequestPaths feeds arbitrary ids and paths to the checks every
// node RPC runs first. They touch nothing (the root walk opens O_PATH
// descriptors only), so the fuzzer is safe on any host. Whatever passes is
// a UUID and a clean path beneath the kubelet root; whatever fails is
// InvalidArgument or NotFound, without a raw control character.
func FuzzNodeRequestPaths(f *testing.F) {
	root := f.TempDir()
	outside := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "pods", "p"), 0o750); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "pods", "l")); err != nil {
		f.Fatal(err)
	}
	ns, err := NewNodeServer(NodeOptions{Metadata: &fakeMetadata{}, DevRoot: f.TempDir(), SysRoot: f.TempDir(), KubeletRoot: root,
		UdevTrigger: func(context.Context) error { return nil }})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ id, path, flag string }{
		{testVol, "/pods/p/mount", "ro"},
		{testVol, "/pods/l/x", "bind"},
		{testVol[:20], "/../etc", "--make-shared"},
		{"..", "//pods/./p/", "ro,remount"},
		{"a\nb", "/proc/self", `context="a,b"`},
		{testVol, "", "commit=5"},
	} {
		f.Add(s.id, s.path, s.flag, true)
		f.Add(s.id, s.path, s.flag, false)
	}
	f.Fuzz(func(t *testing.T, id, path, flag string, underRoot bool) {
		if underRoot {
			path = root + path
		}
		p := path
		err := ns.checkNodeRequest(id, pathField{"target_path", &p})
		switch {
		case err == nil:
			if !device.IsUUID(id) || !strings.HasPrefix(p, root+"/") || p != filepath.Clean(p) || strings.HasPrefix(p, root+"/pods/l/") || p == root+"/pods/l" {
				t.Fatalf("checkNodeRequest(%q, %q) accepted %q", id, path, p)
			}
		case codeOf(err) != codes.InvalidArgument:
			t.Fatalf("checkNodeRequest(%q, %q) = %v, want InvalidArgument", id, path, err)
		}
		vp := path
		if err := ns.checkVolumeAtPath(id, &vp); err != nil && codeOf(err) != codes.InvalidArgument && codeOf(err) != codes.NotFound {
			t.Fatalf("checkVolumeAtPath(%q, %q) = %v", id, path, err)
		}
		_, ferr := validateCapability("volume_capability", mountCap("ext4", flag))
		for _, e := range []error{err, ferr} {
			if e != nil && strings.ContainsAny(e.Error(), "\n\r\x7f") {
				t.Fatalf("message %q carries a raw control character", e.Error())
			}
		}
	})
}
