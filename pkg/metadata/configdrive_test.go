package metadata

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigDriveMountsReadOnlyAndCleansUp builds a labelled filesystem
// image on a loop device, as Nova presents the config drive, and checks
// that reading it leaves no mount and no temporary directory behind.
func TestConfigDriveMountsReadOnlyAndCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mount")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	tree := t.TempDir()
	writeDocument(t, tree, novaDocument)
	image := filepath.Join(t.TempDir(), "config-2.img")
	// No mkisofs or mkfs.vfat here: ext4 with the same label stands in,
	// and the test adds ext4 to the tried types.
	run(t, "truncate", "-s", "8M", image)
	run(t, "mkfs.ext4", "-q", "-L", "config-2", "-d", tree, image)
	loop := strings.TrimSpace(run(t, "losetup", "--find", "--show", image))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })

	devRoot := t.TempDir()
	byLabel := filepath.Join(devRoot, "disk", "by-label")
	if err := os.MkdirAll(byLabel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(loop, filepath.Join(byLabel, "config-2")); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	d := newConfigDrive(devRoot, "")
	d.fsTypes = []string{"iso9660", "vfat", "ext4"}
	data, err := d.read(context.Background())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	md, err := Parse(data)
	if err != nil || md.UUID != "83679162-1378-4288-a2d4-70e13ec132aa" {
		t.Fatalf("Parse(config drive) = %+v, %v", md, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), tmp) {
		t.Fatalf("a mount under %s is left behind", tmp)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("temporary directories left behind: %v", left)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return string(out)
}
