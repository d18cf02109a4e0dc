package manilanode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"

	"github.com/cinder-csi/cinder-csi/pkg/csi/bindmount"
)

// Mounter is what the node service asks of the host. NewHostMounter does
// it for real; tests inject their own (the in-process csi-sanity harness
// bind-mounts the emulator's per-share directory instead of mounting NFS
// or CephFS, which this build host's kernel lacks; see manilanodetest).
type Mounter interface {
	// MountShare mounts the share at target, an existing empty directory.
	// keyFile is the 0600 file holding the cephx key ("" for NFS).
	MountShare(ctx context.Context, spec *ShareSpec, keyFile, target string) error
	// BindMount bind-mounts source at target, read-only when asked.
	BindMount(source, target string, readOnly bool) error
	// Unmount removes the top mount at target.
	Unmount(target string) error
	// MountInfo returns the mount table the mounts above show up in.
	MountInfo() ([]mount.MountInfo, error)
}

// Command is a mount helper invocation. Its Args never hold a credential:
// the cephx key is passed by file name (secretfile=, --keyfile=).
type Command struct {
	Name string
	Args []string
	// OwnSession starts the helper in a session of its own, so that a
	// daemon it leaves behind (ceph-fuse) is not in the plugin's process
	// group and outlives a plugin restart.
	OwnSession bool
}

// HostMounter mounts with the host's mount helpers and mount(2).
type HostMounter struct {
	// Run runs a command and returns its output; tests replace it.
	Run func(ctx context.Context, c Command) ([]byte, error)
	// MountInfoPath is the mount table (default /proc/self/mountinfo).
	MountInfoPath string
	// CephDir holds ceph-fuse's log and admin socket.
	CephDir string
}

// NewHostMounter returns the mounter of a real node. cephDir holds
// ceph-fuse's logs and admin sockets.
func NewHostMounter(cephDir string) *HostMounter {
	return &HostMounter{Run: runCommand, MountInfoPath: "/proc/self/mountinfo", CephDir: cephDir}
}

// MountShare implements Mounter.
func (m *HostMounter) MountShare(ctx context.Context, spec *ShareSpec, keyFile, target string) error {
	c, err := m.mountCommand(spec, keyFile, target)
	if err != nil {
		return err
	}
	out, err := m.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", c.Name, strings.Join(c.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountCommand builds the helper invocation for a share.
func (m *HostMounter) mountCommand(spec *ShareSpec, keyFile, target string) (Command, error) {
	switch {
	case spec.Protocol == ProtocolNFS:
		return nfsCommand(spec, target), nil
	case spec.Mounter == MounterKernel:
		return cephKernelCommand(spec, keyFile, target), nil
	case spec.Mounter == MounterFuse:
		return m.cephFuseCommand(spec, keyFile, target), nil
	}
	return Command{}, fmt.Errorf("no mount command for protocol %q with mounter %q", spec.Protocol, spec.Mounter)
}

// nfsCommand: mount -t nfs4 -o vers=4.1[,opts] server:/path target.
func nfsCommand(spec *ShareSpec, target string) Command {
	opts := append([]string{"vers=" + spec.NFSVersion}, spec.Options...)
	return Command{Name: "mount", Args: []string{"-t", nfsVersions[spec.NFSVersion], "-o", strings.Join(opts, ","), spec.Export.String(), target}}
}

// cephKernelCommand: mount -t ceph -o name=<id>,secretfile=<file>[,...]
// mon1:6789,mon2:6789:/path target. mds_namespace= selects the file
// system: every kernel with CephFS accepts it (fs= needs 5.17+).
func cephKernelCommand(spec *ShareSpec, keyFile, target string) Command {
	opts := []string{"name=" + spec.ClientID, "secretfile=" + keyFile}
	_, hasFS := optionValue(spec.Options, "fs")
	_, hasNS := optionValue(spec.Options, "mds_namespace")
	if spec.FSName != "" && !hasFS && !hasNS {
		opts = append(opts, "mds_namespace="+spec.FSName)
	}
	opts = append(opts, spec.Options...)
	return Command{Name: "mount", Args: []string{"-t", "ceph", "-o", strings.Join(opts, ","), spec.Export.String(), target}}
}

// cephFuseCommand: ceph-fuse <target> -n client.<id> --keyfile=<file>
// -r <path> -m <mons> [--client_fs=<fs>] [-o opts], in its own session.
// The log file and admin socket go to CephDir: the defaults under
// /var/log/ceph and /var/run/ceph do not exist in a plugin container.
func (m *HostMounter) cephFuseCommand(spec *ShareSpec, keyFile, target string) Command {
	args := []string{target, "-n", "client." + spec.ClientID, "--keyfile=" + keyFile,
		"-r", spec.Export.Path, "-m", strings.Join(spec.Export.Servers, ",")}
	if m.CephDir != "" {
		base := filepath.Join(m.CephDir, spec.VolumeID)
		args = append(args, "-c", "/dev/null", "--log-file="+base+".log", "--admin-socket="+base+".asok")
	}
	if spec.FSName != "" {
		args = append(args, "--client_fs="+spec.FSName)
	}
	if len(spec.Options) > 0 {
		args = append(args, "-o", strings.Join(spec.Options, ","))
	}
	return Command{Name: "ceph-fuse", Args: args, OwnSession: true}
}

// runCommand runs c, collecting its output in a file rather than a pipe:
// ceph-fuse's daemon inherits the parent's stdout, and a pipe it keeps
// open would block the wait until the share is unmounted.
func runCommand(ctx context.Context, c Command) ([]byte, error) {
	if _, err := exec.LookPath(c.Name); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errMountHelperMissing, c.Name, err)
	}
	out, err := os.CreateTemp("", "manila-mount-*.out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Stdout, cmd.Stderr = out, out
	if c.OwnSession {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	runErr := cmd.Run()
	text, _ := os.ReadFile(out.Name())
	return text, runErr
}

// BindMount implements Mounter with mount(2): one bind, and a remount
// only for read-only (a bind cannot be made read-only in one call).
func (m *HostMounter) BindMount(source, target string, readOnly bool) error {
	return bindmount.Mount(source, target, readOnly)
}

// Unmount implements Mounter. A FUSE mount whose daemon died ("transport
// endpoint is not connected") is detached: a plain unmount of it can hang
// or fail, and nothing on it can be saved.
func (m *HostMounter) Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.EBUSY) && isBroken(target) {
		if derr := unix.Unmount(target, unix.MNT_DETACH); derr == nil {
			return nil
		}
	}
	return fmt.Errorf("unmounting %s: %w", target, err)
}

// MountInfo implements Mounter.
func (m *HostMounter) MountInfo() ([]mount.MountInfo, error) {
	infos, err := mount.ParseMountInfo(m.MountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table %s: %w", m.MountInfoPath, err)
	}
	return infos, nil
}

// isBroken reports a mount whose server or daemon is gone: stat fails with
// ENOTCONN (FUSE without its daemon), ESTALE or EIO.
func isBroken(path string) bool {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return err != nil && mount.IsCorruptedMnt(err)
}
