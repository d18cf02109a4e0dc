// Package vmrig drives the vm-rig's QEMU guests (../shared/tools/vm-rig)
// from Go tests: a real Linux kernel as a "worker node" for node-plugin
// tests, with virtio-blk hot-plug carrying a Cinder-style serial, online
// block_resize, a shared directory at /share and host-to-guest socket
// forwards. It is test-only: production code must not import it.
//
// Typical use:
//
//	r := vmrig.Require(t)                       // skips with a one-line reason
//	dir := vmrig.BuildPlugin(t, "./cmd/cinder-csi-plugin")
//	g := r.Start(t, "node", vmrig.Options{Share: dir, Forwards: []vmrig.Forward{{Host: sock, Guest: "unix:/csi/csi.sock"}}})
//	g.Spawn(ctx, "/var/log/csi.log", "/share/cinder-csi-plugin", "--endpoint", "unix:///csi/csi.sock")
//	att, _ := g.Attach(ctx, volumeID, imageFile)    // /dev/disk/by-id/virtio-<id[:20]> in the guest
//	out, _ := g.Sh(ctx, "blkid "+att.ByID)
//
// Guests get unique names (the prefix and a random suffix) and are stopped
// and removed by t.Cleanup, their console log copied into the test log
// when the test failed. Every call takes a context: its deadline bounds the
// call, as the time box of the suite using it.
//
// Options.QMP adds a second QEMU monitor (Guest.QMPSocket) that is the
// caller's alone, e.g. for the OpenStack emulator's VM hot-plug mode
// (emulator.GuestSpec), which needs QMP events (DEVICE_DELETED) the
// vm-rig's own monitor does not pass on. Disks plugged through it are
// unknown to Guest.Attach/Detach/Resize, which go through the rig.
package vmrig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rig is a built vm-rig on this host.
type Rig struct {
	// VMPy is the rig's vm.py.
	VMPy string
	// State is $VM_RIG_STATE (default /var/lib/vm-rig).
	State string
}

// BuildTimeout bounds build.sh: 4.4-6.3 s cold with the packages
// installed, 1.1-1.4 s warm (vm-rig README); installing the packages on a
// fresh machine takes a minute or two.
const BuildTimeout = 5 * time.Minute

var (
	buildOnce sync.Once
	buildErr  error
)

// Dir is the vm-rig's directory: $VM_RIG_DIR, else ../shared/tools/vm-rig
// from the repository root, else /work/shared/tools/vm-rig; "" if none has
// vm.py.
func Dir() string {
	cands := []string{os.Getenv("VM_RIG_DIR")}
	if root, err := RepoRoot(); err == nil {
		cands = append(cands, filepath.Join(root, "..", "shared", "tools", "vm-rig"))
	}
	cands = append(cands, "/work/shared/tools/vm-rig")
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "vm.py")); err == nil {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	return ""
}

// Require returns the rig, building it once per process (build.sh is
// idempotent), or skips the test with the reason it cannot run here: not
// root, no qemu-system-x86_64, no vm-rig, or build.sh failed. Set
// VM_RIG_NO_BUILD=1 to skip instead of building.
func Require(t testing.TB) *Rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("vm-rig guests need root (QEMU, loop devices)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("vm-rig needs qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	dir := Dir()
	if dir == "" {
		t.Skip("vm-rig not found: set VM_RIG_DIR to ../shared/tools/vm-rig")
	}
	r := &Rig{VMPy: filepath.Join(dir, "vm.py"), State: os.Getenv("VM_RIG_STATE")}
	if r.State == "" {
		r.State = "/var/lib/vm-rig"
	}
	if os.Getenv("VM_RIG_NO_BUILD") != "" {
		if _, err := os.Stat(filepath.Join(r.State, "build", "initramfs.img")); err != nil {
			t.Skipf("vm-rig is not built and VM_RIG_NO_BUILD is set: %v", err)
		}
		return r
	}
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(dir, "build.sh")).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, lastLines(string(out), 5))
		}
	})
	if buildErr != nil {
		t.Skipf("vm-rig build.sh failed: %v", buildErr)
	}
	return r
}

// RepoRoot is the directory holding go.mod, from the working directory up.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		d = parent
	}
}

// BuildPlugin builds the main package pkg (e.g. "./cmd/cinder-csi-plugin",
// relative to the repository root) statically into a fresh directory for
// Options.Share, and returns the directory. The binary is named after the
// package's last element. A package missing from this tree skips the test.
func BuildPlugin(t testing.TB, pkg string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
		t.Skipf("%s is not in this tree: %v", pkg, err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, filepath.Base(pkg)), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return dir
}

func (r *Rig) vm(ctx context.Context, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, r.VMPy, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm.py %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// EnvGate is the variable `make e2e-vm` sets: suites that boot guests on
// every run (this package's own test, the Cinder node suite) skip without
// it, so `go test ./...` stays fast.
const EnvGate = "CINDER_CSI_E2E_VM"

// RequireE2E skips unless EnvGate is set, then is Require.
func RequireE2E(t testing.TB) *Rig {
	t.Helper()
	if os.Getenv(EnvGate) == "" {
		t.Skipf("boots vm-rig guests: set %s=1 (make e2e-vm)", EnvGate)
	}
	return Require(t)
}
