// Package manilanodetest holds what tests of the Manila node need and a
// production node must never have: a mounter that stands a directory in
// for a share (this build host has no kernel NFS or CephFS client), and a
// private mount namespace to run mount tests in.
package manilanodetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
)

// DirMounter mounts a share by bind-mounting the directory Dir returns for
// its share id (the emulator's per-share directory in the in-process
// csi-sanity harness). Binds, unmounts and the mount table are the host's,
// so the node's ownership checks run on real mounts. For CephFS it checks
// that the node handed it a 0600 key file, as a real mount would need.
type DirMounter struct {
	*manilanode.HostMounter
	// Dir returns the directory that holds the share's data, false for a
	// share it does not know (emulator.Emulator.ShareDir has this shape).
	Dir func(shareID string) (string, bool)

	mu     sync.Mutex
	mounts int
}

// NewDirMounter returns a DirMounter over dir; in the sanity harness,
// NewDirMounter(emu.ShareDir).
func NewDirMounter(dir func(shareID string) (string, bool)) *DirMounter {
	return &DirMounter{HostMounter: manilanode.NewHostMounter(""), Dir: dir}
}

// MountShare implements manilanode.Mounter.
func (m *DirMounter) MountShare(_ context.Context, spec *manilanode.ShareSpec, keyFile, target string) error {
	id := spec.ShareID
	if id == "" {
		id = spec.VolumeID
	}
	if spec.Protocol == manilanode.ProtocolCephFS {
		fi, err := os.Stat(keyFile)
		if err != nil {
			return fmt.Errorf("dir mounter: the cephx key file: %w", err)
		}
		if fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("dir mounter: the cephx key file %s has mode %v, not 0600", keyFile, fi.Mode().Perm())
		}
	}
	dir, ok := m.Dir(id)
	if !ok {
		return fmt.Errorf("dir mounter: share %s has no directory: %w", id, os.ErrNotExist)
	}
	if err := m.BindMount(dir, target, false); err != nil {
		return err
	}
	m.mu.Lock()
	m.mounts++
	m.mu.Unlock()
	return nil
}

// ShareMounts counts the share mounts made (not the publish binds).
func (m *DirMounter) ShareMounts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mounts
}

// envInNamespace marks the re-executed test binary.
const envInNamespace = "MANILANODETEST_PRIVATE_MOUNT_NS"

// RunInPrivateMountNamespace runs the tests in a private mount namespace
// when it can (root and unshare(1)): the binary re-executes itself under
// `unshare --mount --propagation private`, so no mount a test makes, or a
// regression makes by mistake, reaches the host's namespace, and every
// mount disappears with the namespace. Otherwise the tests run as they
// are; those needing mounts skip (RequireMountNamespace). Call it from
// TestMain.
func RunInPrivateMountNamespace(m *testing.M) int {
	if os.Getenv(envInNamespace) != "" || os.Geteuid() != 0 {
		return m.Run()
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return m.Run()
	}
	self, err := os.Executable()
	if err != nil {
		return m.Run()
	}
	cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInNamespace+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "manilanodetest: re-executing in a private mount namespace:", err)
		return 1
	}
	return 0
}

// RequireMountNamespace skips a test that mounts unless it runs in the
// private namespace RunInPrivateMountNamespace made.
func RequireMountNamespace(t testing.TB) {
	t.Helper()
	if os.Getenv(envInNamespace) == "" {
		t.Skip("needs root and unshare(1) for a private mount namespace")
	}
}

// MountsUnder lists the mount points of the mount table under dir.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range infos {
		if m.MountPoint == dir || strings.HasPrefix(m.MountPoint, dir+"/") {
			out = append(out, m.MountPoint)
		}
	}
	return out
}
