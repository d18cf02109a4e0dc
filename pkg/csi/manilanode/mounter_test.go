package manilanode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

func specFor(t *testing.T, vctx map[string]string, flags ...string) *ShareSpec {
	t.Helper()
	spec, err := parseShareSpec(specInput{volumeID: shareA, capability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, flags...), volumeContext: vctx})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestMountCommandsAreExactAndNeverCarryTheKey(t *testing.T) {
	const keyFile = "/var/lib/kubelet/plugins/manila.csi.openstack.org/state/keys/" + shareA + ".key"
	m := &HostMounter{CephDir: "/state/ceph"}
	cases := []struct {
		name  string
		vctx  map[string]string
		flags []string
		want  Command
	}{
		{"NFS defaults to 4.1", nfsContext(nfsExpA), nil,
			Command{Name: "mount", Args: []string{"-t", "nfs4", "-o", "vers=4.1", nfsExpA, "/stage"}}},
		{"NFS version and options from the context and flags", map[string]string{KeyProtocol: "nfs", KeyExportLocation: nfsExpA, KeyNFSVersion: "4.2", KeyNFSMountOptions: "hard,timeo=600"}, []string{"noatime", "hard"},
			Command{Name: "mount", Args: []string{"-t", "nfs4", "-o", "vers=4.2,hard,timeo=600,noatime", nfsExpA, "/stage"}}},
		{"NFS nfsvers in a flag", nfsContext(nfsExpA), []string{"nfsvers=3"},
			Command{Name: "mount", Args: []string{"-t", "nfs", "-o", "vers=3", nfsExpA, "/stage"}}},
		{"CephFS kernel", map[string]string{KeyProtocol: ProtocolCephFS, KeyExportLocation: cephExpA, KeyCephFSMounter: "kernel", KeyCephClientID: "pvc-a", KeyFSName: "cephfs", KeyCephKernelOptions: "noatime"}, nil,
			Command{Name: "mount", Args: []string{"-t", "ceph", "-o", "name=pvc-a,secretfile=" + keyFile + ",mds_namespace=cephfs,noatime", cephExpA, "/stage"}}},
		{"CephFS fuse (the default)", cephContext(cephExpA), nil,
			Command{Name: "ceph-fuse", OwnSession: true, Args: []string{"/stage", "-n", "client.pvc-a", "--keyfile=" + keyFile, "-r", "/volumes/_nogroup/a/uuid-a", "-m", "10.0.0.7:6789,10.0.0.8:6789",
				"-c", "/dev/null", "--log-file=/state/ceph/" + shareA + ".log", "--admin-socket=/state/ceph/" + shareA + ".asok"}}},
		{"CephFS fuse with fs name and options", map[string]string{KeyProtocol: ProtocolCephFS, KeyExportLocation: cephExpA, KeyCephClientID: "pvc-a", KeyFSName: "fs2", KeyCephFuseOptions: "allow_other"}, []string{"noatime"},
			Command{Name: "ceph-fuse", OwnSession: true, Args: []string{"/stage", "-n", "client.pvc-a", "--keyfile=" + keyFile, "-r", "/volumes/_nogroup/a/uuid-a", "-m", "10.0.0.7:6789,10.0.0.8:6789",
				"-c", "/dev/null", "--log-file=/state/ceph/" + shareA + ".log", "--admin-socket=/state/ceph/" + shareA + ".asok", "--client_fs=fs2", "-o", "allow_other,noatime"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Command
			m.Run = func(_ context.Context, cmd Command) ([]byte, error) { got = cmd; return nil, nil }
			if err := m.MountShare(context.Background(), specFor(t, c.vctx, c.flags...), keyFile, "/stage"); err != nil {
				t.Fatal(err)
			}
			if got.Name != c.want.Name || got.OwnSession != c.want.OwnSession || !slices.Equal(got.Args, c.want.Args) {
				t.Fatalf("command\n got %s %q own=%v\nwant %s %q own=%v", got.Name, got.Args, got.OwnSession, c.want.Name, c.want.Args, c.want.OwnSession)
			}
			for _, a := range got.Args {
				if strings.Contains(a, testKey) || strings.Contains(a, "secret=") {
					t.Fatalf("argument %q carries a key", a)
				}
			}
		})
	}
}

func TestAMountHelperFailureNamesTheCommandNotTheKey(t *testing.T) {
	m := &HostMounter{Run: func(context.Context, Command) ([]byte, error) {
		return []byte("mount error 110 = Connection timed out\n"), errors.New("exit status 32")
	}}
	spec := specFor(t, map[string]string{KeyProtocol: ProtocolCephFS, KeyExportLocation: cephExpA, KeyCephFSMounter: "kernel", KeyCephClientID: "pvc-a"})
	err := m.MountShare(context.Background(), spec, "/keys/a.key", "/stage")
	if err == nil || !strings.Contains(err.Error(), "secretfile=/keys/a.key") || !strings.Contains(err.Error(), "Connection timed out") {
		t.Fatalf("error %v", err)
	}
	wantCode(t, mountFailure(err, "mounting"), codes.Unavailable, "timed out")
}

func TestRunCommandReportsAMissingHelperAsUnavailable(t *testing.T) {
	_, err := runCommand(context.Background(), Command{Name: "no-such-mount-helper-xyz"})
	if !errors.Is(err, errMountHelperMissing) {
		t.Fatalf("err %v, want errMountHelperMissing", err)
	}
	wantCode(t, mountFailure(err, "mounting"), codes.Unavailable, "no-such-mount-helper-xyz")
}

func TestRunCommandReturnsWhenTheHelperExitsEvenIfAChildKeepsItsOutput(t *testing.T) {
	// ceph-fuse's daemon keeps the parent's stdout: with a pipe the wait
	// would last as long as the daemon.
	out, err := runCommand(context.Background(), Command{Name: "sh", Args: []string{"-c", "echo mounted; (sleep 5 &) ; exit 0"}, OwnSession: true})
	if err != nil || strings.TrimSpace(string(out)) != "mounted" {
		t.Fatalf("out %q err %v", out, err)
	}
}

func TestUtilLinuxsReadOnlyRetryOfARefusedMountIsFailedPrecondition(t *testing.T) {
	// mount(8) retries read-only after EACCES and then reports this (seen
	// with the emulator's NFS export and no active rule for the node).
	err := errors.New("mount: /stage: cannot mount 10.0.2.100:/volumes/_nogroup/a/b read-only.\n       dmesg(1) may have more information after failed mount system call.: exit status 32")
	wantCode(t, mountFailure(err, "mounting"), codes.FailedPrecondition, "access rule")
}

func TestAnUnmountThatIsBusyForAMomentIsRetriedAndOneThatStaysIsUnavailable(t *testing.T) {
	calls := 0
	flaky := func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("unmounting /stage: %w", unix.EBUSY)
		}
		return nil
	}
	if err := retryBusy(context.Background(), "/stage", flaky); err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	busy := func() error { calls++; return fmt.Errorf("unmounting /stage: %w", unix.EBUSY) }
	wantCode(t, retryBusy(context.Background(), "/stage", busy), codes.Unavailable, "/stage is busy")
	if calls != busyRetries+1 {
		t.Errorf("%d calls, want %d", calls, busyRetries+1)
	}
	other := errors.New("not mounted")
	if err := retryBusy(context.Background(), "/stage", func() error { return other }); err != other {
		t.Errorf("err %v, want the unmount's own", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	wantCode(t, retryBusy(ctx, "/stage", busy), codes.Unavailable, "busy")
}
