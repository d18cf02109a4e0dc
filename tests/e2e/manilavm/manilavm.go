// Package manilavm runs the Manila node plugin (cmd/manila-csi-plugin,
// node service only) in vm-rig guests, whose kernels have the NFS and
// CephFS clients this host lacks, for the node tests and csi-sanity: the
// guest boots with the plugin in /share, loads the kernel modules the
// rig's initramfs leaves out, starts the plugin and is reached through a
// forwarded CSI socket. It also starts the emulator with its NFS export
// where the guests reach it. Test-only.
package manilavm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

const (
	// NodeAddress is the address every guest reaches a host NFS server
	// from: QEMU's guestfwd hands each connection to socat on the host,
	// which connects from 127.0.0.1. The plugin reports it, so the
	// controller's per-node rule names what the server sees.
	NodeAddress = "127.0.0.1"
	// KubeletRoot is the plugin's --kubelet-root-dir in the guest.
	KubeletRoot = "/var/lib/kubelet"
	// NFSv3Options are the mount options of the emulator's export as a
	// guest mounts it: NFSv3 (go-nfs serves no NFSv4) with MOUNT on the
	// NFS port (there is no portmapper) and no lock manager (no statd in
	// the guest), at the guestfwd address.
	NFSv3Options = "proto=tcp,port=2049,mountport=2049,mountproto=tcp,nolock,addr=" + vmrig.HostAddress +
		",mountaddr=" + vmrig.HostAddress + ",timeo=100,retrans=2"
)

// guestModules are kernel modules of the guest's kernel that vm-rig's
// initramfs does not carry (its guest/modules lists nfs and nfsv4): NFSv3
// and the CephFS kernel client. They are shipped in /share and loaded with
// insmod in this order (each after what it depends on; nfs, lockd,
// sunrpc, fscache, netfs and libcrc32c are loaded already).
var guestModules = []string{"fs/nfs_common/nfs_acl.ko", "fs/nfs/nfsv3.ko", "net/ceph/libceph.ko", "fs/ceph/ceph.ko"}

// PluginDir builds the plugin and copies the guest kernel's extra modules
// beside it, for vmrig.Options.Share.
func PluginDir(t *testing.T, r *vmrig.Rig) string {
	t.Helper()
	dir := vmrig.BuildPlugin(t, "./cmd/manila-csi-plugin")
	version, err := os.ReadFile(filepath.Join(r.State, "build", "kernel.version"))
	if err != nil {
		t.Skipf("the vm-rig build has no kernel.version: %v", err)
	}
	v := strings.TrimSpace(string(version))
	modules := filepath.Join(r.State, "build", "kernel", v, "root", "lib", "modules", v, "kernel")
	for _, m := range guestModules {
		b, err := os.ReadFile(filepath.Join(modules, m))
		if err != nil {
			t.Skipf("the guest kernel's module %s is not in the vm-rig build: %v", m, err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(m)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Node is the plugin running in a guest.
type Node struct {
	G      *vmrig.Guest
	Name   string // the plugin's node name (--nodeid)
	Socket string // the host end of the forwarded CSI socket
	CSI    csi.NodeClient
	ID     csi.IdentityClient
}

// StartNode boots a guest with the plugin from dir, reaching host port
// nfsPort as 10.0.2.100:2049, and waits for the plugin's NodeGetInfo.
func StartNode(ctx context.Context, t *testing.T, r *vmrig.Rig, name, dir string, nfsPort int) *Node {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	g := r.Start(t, name, vmrig.Options{Share: dir, NFSForward: nfsPort,
		Forwards: []vmrig.Forward{{Host: sock, Guest: "unix:/csi/csi.sock"}}})
	// The guest's init loads nfs (with sunrpc, lockd) and fscache in the
	// background; what guestModules need must be in before insmod.
	load := []string{"for i in $(seq 300); do [ -d /sys/module/nfs ] && [ -d /sys/module/lockd ] && [ -d /sys/module/fscache ] && [ -d /sys/module/libcrc32c ] && break; sleep 0.1; done"}
	for _, m := range guestModules {
		load = append(load, "insmod /share/"+filepath.Base(m))
	}
	if out, err := g.Sh(ctx, strings.Join(load, " && ")); err != nil {
		t.Fatalf("loading the guest's NFSv3 and CephFS modules: %v %s", err, out)
	}
	if _, err := g.Spawn(ctx, "/var/log/csi.log", "/share/manila-csi-plugin", "--endpoint", "unix:///csi/csi.sock",
		"--provide-controller-service=false", "--nodeid", name, "--node-addresses", NodeAddress,
		"--kubelet-root-dir", KubeletRoot, "-v", "2"); err != nil {
		t.Fatalf("starting the plugin in %s: %v", g.Name, err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	n := &Node{G: g, Name: name, Socket: sock, CSI: csi.NewNodeClient(conn), ID: csi.NewIdentityClient(conn)}
	if err := n.waitInfo(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitInfo waits until the plugin answers NodeGetInfo (its start under
// TCG takes a few seconds).
func (n *Node) waitInfo(ctx context.Context) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.CSI.NodeGetInfo(cctx, &csi.NodeGetInfoRequest{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			log, _ := n.G.Sh(context.Background(), "tail -n 30 /var/log/csi.log")
			return fmt.Errorf("the plugin in %s never answered: %v\n%s", n.G.Name, err, log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StagingPath is kubelet's staging path for a volume on the node.
func (n *Node) StagingPath(vol string) string {
	return KubeletRoot + "/plugins/kubernetes.io/csi/" + manilanode.DefaultDriverName + "/" + vol + "/globalmount"
}

// TargetPath is kubelet's publish path for a volume on the node.
func (n *Node) TargetPath(vol string) string {
	return KubeletRoot + "/pods/pod-" + n.Name + "/volumes/kubernetes.io~csi/" + vol + "/mount"
}

// Mounts lists the guest's mounts of type fstype prefix ("nfs" matches
// nfs and nfs4) under the kubelet root.
func (n *Node) Mounts(ctx context.Context, fstype string) ([]string, error) {
	out, err := n.G.Sh(ctx, "cat /proc/mounts")
	if err != nil {
		return nil, err
	}
	var left []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.HasPrefix(f[1], KubeletRoot+"/") && strings.HasPrefix(f[2], fstype) {
			left = append(left, f[1]+" ("+f[2]+")")
		}
	}
	return left, nil
}

// Emulator starts the emulator with its NFS export on an ephemeral
// loopback port, export locations naming the guests' view of it
// (10.0.2.100), and returns it, its cloud.conf and the export's port.
func Emulator(t *testing.T) (*emulator.Emulator, string, int) {
	t.Helper()
	work := t.TempDir()
	e, err := emulator.Start(emulator.Options{DataDir: filepath.Join(work, "data"),
		Manila: manila.Options{NFSListen: "127.0.0.1:0", NFSHost: vmrig.HostAddress}})
	if err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
	})
	conf := filepath.Join(work, "cloud.conf")
	if err := os.WriteFile(conf, []byte(e.CloudConf("Global", "demo")), 0o600); err != nil {
		t.Fatal(err)
	}
	var port int
	addr := e.Manila().NFSAddr()
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port); err != nil {
		t.Fatalf("NFS address %q: %v", addr, err)
	}
	return e, conf, port
}
