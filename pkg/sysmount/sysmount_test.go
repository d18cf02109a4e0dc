package sysmount

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"
)

func TestParse(t *testing.T) {
	cases := []struct {
		fstype  string
		options []string
		flags   uintptr
		data    string
	}{
		{"ext4", nil, 0, ""},
		{"ext4", []string{"defaults"}, 0, ""},
		{"ext4", []string{"ro", "noatime", "defaults"}, unix.MS_RDONLY | unix.MS_NOATIME, ""},
		{"xfs", []string{"nouuid", "defaults"}, 0, "nouuid"},
		{"ext4", []string{"ro,rw", "nosuid"}, unix.MS_NOSUID, ""},
		{"ext4", []string{"discard", "errors=remount-ro", "data=ordered", "nodev,noexec"}, unix.MS_NODEV | unix.MS_NOEXEC, "discard,errors=remount-ro,data=ordered"},
		{"xfs", []string{"noauto", "nofail", "_netdev", "x-systemd.automount", "X-mount.mkdir", "comment=fstab"}, 0, ""},
		{"btrfs", []string{"subvol=/data", "compress=zstd", "relatime", "lazytime"}, unix.MS_RELATIME | unix.MS_LAZYTIME, "subvol=/data,compress=zstd"},
		{"ext3", []string{"sync", "async", "dirsync"}, unix.MS_DIRSYNC, ""},
	}
	for _, c := range cases {
		flags, data, err := Parse(c.fstype, c.options)
		if err != nil || flags != c.flags || data != c.data {
			t.Errorf("Parse(%s, %q) = %#x, %q, %v; want %#x, %q", c.fstype, c.options, flags, data, err, c.flags, c.data)
		}
	}
}

func TestParseLeavesToMount8(t *testing.T) {
	cases := []struct {
		fstype  string
		options []string
	}{
		{"nfs", nil},
		{"ext4", []string{"user"}},
		{"ext4", []string{"ro", "users"}},
		{"xfs", []string{"loop,offset=4096"}},
		{"ext4", []string{"bind"}},
		{"ext4", []string{"remount", "ro"}},
		{"ext4", []string{"make-rshared"}},
		{"xfs", []string{`context="system_u:object_r:container_file_t:s0"`}},
	}
	for _, c := range cases {
		if _, _, err := Parse(c.fstype, c.options); !errors.Is(err, ErrUseMount8) {
			t.Errorf("Parse(%s, %q) = %v; want ErrUseMount8", c.fstype, c.options, err)
		}
	}
}

// loopDevice formats a sparse file as fstype and attaches it.
func loopDevice(t *testing.T, fstype string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	for _, tool := range []string{"losetup", "mkfs." + fstype} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("mounting a real filesystem needs %s", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs."+fstype, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.%s: %v: %s", fstype, err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// Mount gives what mount(8) gives: the same per-mount flags and the
// filesystem options in the mount table.
func TestMountMatchesMount8(t *testing.T) {
	for _, c := range []struct {
		fstype, superOption string
		options             []string
	}{
		{"ext4", "errors=remount-ro", []string{"ro", "noatime", "errors=remount-ro", "defaults"}},
		{"xfs", "nouuid", []string{"nouuid", "nodev", "defaults"}},
	} {
		t.Run(c.fstype, func(t *testing.T) {
			dev := loopDevice(t, c.fstype)
			ours, theirs := t.TempDir(), t.TempDir()
			if err := Mount(dev, ours, c.fstype, c.options); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(ours, 0)
			ourMount := mountAt(t, ours)
			if err := unix.Unmount(ours, 0); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", c.fstype, "-o", strings.Join(c.options, ","), dev, theirs).CombinedOutput(); err != nil {
				t.Fatalf("mount(8): %v: %s", err, out)
			}
			defer unix.Unmount(theirs, 0)
			theirMount := mountAt(t, theirs)
			if !slices.Equal(ourMount.MountOptions, theirMount.MountOptions) {
				t.Errorf("per-mount options: mount(2) %q, mount(8) %q", ourMount.MountOptions, theirMount.MountOptions)
			}
			if !slices.Equal(ourMount.SuperOptions, theirMount.SuperOptions) {
				t.Errorf("filesystem options: mount(2) %q, mount(8) %q", ourMount.SuperOptions, theirMount.SuperOptions)
			}
			if c.fstype == "ext4" && !slices.Contains(ourMount.SuperOptions, c.superOption) {
				t.Errorf("filesystem options %q lack %s", ourMount.SuperOptions, c.superOption)
			}
		})
	}
}

func TestMountErrorsNameTheProblem(t *testing.T) {
	dev := loopDevice(t, "ext4")
	err := Mount(dev, t.TempDir(), "ext4", []string{"no_such_option"})
	if err == nil || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "bad option") {
		t.Errorf("Mount with a bad option = %v; want EINVAL naming a bad option", err)
	}
	if err := Mount(dev, t.TempDir(), "nfs", nil); !errors.Is(err, ErrUseMount8) {
		t.Errorf("Mount nfs = %v; want ErrUseMount8", err)
	}
}

func mountAt(t *testing.T, path string) mount.MountInfo {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	resolved, _ := filepath.EvalSymlinks(path)
	for _, m := range infos {
		if m.MountPoint == resolved {
			return m
		}
	}
	t.Fatalf("nothing mounted at %s", path)
	return mount.MountInfo{}
}
