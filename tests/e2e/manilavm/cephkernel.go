package manilavm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// The CephFS kernel client in a guest needs two things the vm-rig guest
// lacks. mount.ceph: the kernel takes no secretfile= (the driver never
// puts the key on a command line), the helper reads the file and hands the
// key to the kernel's keyring; the host's (ceph-common) is copied into
// /share/cephlib with the libraries ldd names, behind a /sbin/mount.ceph
// wrapper. And a path to every Ceph daemon: the rig's Ceph binds to
// 127.0.0.1, so its maps name 127.0.0.1:<port> for the monitor, the OSDs
// and the MDS; tcprelay listens on those ports at the guest's own
// 127.0.0.1 and carries each connection over the guest's one forwarded
// port to Relay on the host.

// AddCephKernelClient adds tcprelay and mount.ceph with its libraries to
// the plugin directory dir; it skips without the host's mount.ceph.
func AddCephKernelClient(t *testing.T, dir string) {
	t.Helper()
	helper, err := exec.LookPath("mount.ceph")
	if err != nil {
		t.Skip("the CephFS kernel client in a guest uses the host's mount.ceph (ceph-common), which is not installed")
	}
	relayDir := vmrig.BuildPlugin(t, "./tests/e2e/manilavm/tcprelay")
	copyFile(t, filepath.Join(relayDir, "tcprelay"), filepath.Join(dir, "tcprelay"), 0o755)
	lib := filepath.Join(dir, "cephlib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, helper, filepath.Join(lib, "mount.ceph"), 0o755)
	out, err := exec.Command("ldd", helper).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", helper, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if _, path, ok := strings.Cut(l, "=> "); ok {
			if path, _, _ = strings.Cut(path, " ("); strings.HasPrefix(path, "/") {
				copyFile(t, path, filepath.Join(lib, filepath.Base(path)), 0o644)
			}
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// StartCephClient installs the mount.ceph wrapper in the guest and starts
// tcprelay on ports (the Ceph daemons' loopback ports, CephPorts).
func (n *Node) StartCephClient(ctx context.Context, ports []int) error {
	wrapper := "#!/bin/sh\nLD_LIBRARY_PATH=/share/cephlib exec /share/cephlib/mount.ceph \"$@\"\n"
	if _, err := n.G.Sh(ctx, "printf '%s' '"+wrapper+"' > /sbin/mount.ceph && chmod 755 /sbin/mount.ceph"); err != nil {
		return err
	}
	argv := []string{"/share/tcprelay", "guest", vmrig.HostAddress + ":2049"}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p))
	}
	if _, err := n.G.Spawn(ctx, "/var/log/tcprelay.log", argv...); err != nil {
		return err
	}
	_, err := n.G.Sh(ctx, "for i in $(seq 100); do grep -q ready /var/log/tcprelay.log && exit 0; sleep 0.1; done; cat /var/log/tcprelay.log; exit 1")
	return err
}

// CephPorts lists the loopback ports of the Ceph daemons (monitors, OSDs,
// MDSs; both messenger versions) from the cluster's maps, read with
// cephConf (an admin's).
func CephPorts(cephConf string) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for _, what := range [][]string{{"mon", "dump"}, {"osd", "dump"}, {"fs", "dump"}} {
		out, err := exec.Command("ceph", append([]string{"-c", cephConf}, what...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("ceph %s: %w", strings.Join(what, " "), err)
		}
		for _, f := range strings.FieldsFunc(string(out), func(r rune) bool { return r == ',' || r == '[' || r == ']' || r == ' ' }) {
			_, rest, ok := strings.Cut(f, "127.0.0.1:")
			if !ok {
				continue
			}
			port, _, _ := strings.Cut(rest, "/")
			if p, err := strconv.Atoi(port); err == nil && !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("no 127.0.0.1 daemon address in the Ceph maps")
	}
	return ports, nil
}
