package cinder

import (
	"os"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/device/devicetest"
)

// Bind mounts are made with mount(2) (bindMount), and the node formats
// after its own probe rather than through FormatAndMount; these tests pin
// what mount(8) and FormatAndMount used to guarantee. They need root.

// mountOptionsAt returns the per-mount options of the top mount at path.
func mountOptionsAt(t *testing.T, path string) []string {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	found := false
	for _, m := range infos {
		if m.MountPoint == path {
			opts, found = m.MountOptions, true
		}
	}
	if !found {
		t.Fatalf("nothing mounted at %s", path)
	}
	return opts
}

func TestNodeReadOnlyPublishKeepsTheStagingMountFlags(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0020-4000-8000-000000000020"
	e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	vc := mountCap("ext4", "nosuid", "nodev", "noexec")
	staging, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, true))
	e.must(e.publish(vol, vc, true))
	if n := mountsAt(t, target); n != 1 {
		t.Fatalf("%d mounts at the target after two read-only publishes, want 1", n)
	}
	got := mountOptionsAt(t, target)
	for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(got, want) {
			t.Fatalf("read-only publish has options %v, missing %q", got, want)
		}
	}
	if slices.Contains(mountOptionsAt(t, staging), "ro") {
		t.Fatal("the read-only publish made the staging mount read-only")
	}
	if err := os.WriteFile(target+"/x", nil, 0o644); err == nil {
		t.Fatal("wrote through a read-only publish")
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

// A read-only bind of a device node is all NodePublish can do for a block
// volume; the kernel does not apply a mount's read-only flag to opening a
// device node, so this pins the mount flag only.
func TestNodeReadOnlyBlockPublishIsAReadOnlyMount(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0021-4000-8000-000000000021"
	e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	vc := blockCap()
	_, target := e.paths(vol)
	e.must(e.stage(vol, vc, nil, nil))
	e.must(e.publish(vol, vc, true))
	if !slices.Contains(mountOptionsAt(t, target), "ro") {
		t.Fatalf("read-only block publish has options %v", mountOptionsAt(t, target))
	}
	e.must(e.unpublish(vol))
	e.must(e.unstage(vol))
}

func TestNodeNeverFormatsABlankDeviceForAReadOnlyMount(t *testing.T) {
	e := newHostEnv(t, NodeOptions{})
	const vol = "5a1f0c2e-0022-4000-8000-000000000022"
	d := e.h.Plug(t, vol, 64*mib, devicetest.PlugOptions{})
	if err := e.stage(vol, mountCap("ext4", "ro"), nil, nil); codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("read-only stage of a blank device = %v, want FailedPrecondition", err)
	}
	if got := diskFormat(t, d.Loop); got != "" {
		t.Fatalf("the device holds %q after a refused read-only stage, want nothing", got)
	}
}
