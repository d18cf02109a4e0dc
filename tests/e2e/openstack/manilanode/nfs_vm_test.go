package manilanode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// The NFS test runs the real plugin binary (node service only) in two
// vm-rig guests, whose kernels have the NFS client this host lacks, and
// mounts a share of the rig's NFS-Ganesha backend. The guests reach
// Ganesha as 10.0.2.100:2049 through QEMU's guestfwd (socat to host
// 127.0.0.1:2049), so Ganesha sees every guest as 127.0.0.1: that is the
// access rule the test grants, and the export location's host is
// rewritten to 10.0.2.100, as --runtime-config's matchExportLocationAddress
// or a real network would make it.

const (
	guestNFSServer = "10.0.2.100"
	guestAddress   = "10.0.2.15"
)

func vmRig(t *testing.T) string {
	t.Helper()
	state := os.Getenv("VM_RIG_STATE")
	if state == "" {
		state = "/var/lib/vm-rig"
	}
	if _, err := os.Stat(filepath.Join(state, "build")); err != nil {
		t.Skipf("vm-rig is not built (%v): run ../shared/tools/vm-rig/build.sh", err)
	}
	for _, d := range []string{os.Getenv("VM_RIG_DIR"), "/work/shared/tools/vm-rig"} {
		if d != "" {
			if _, err := os.Stat(filepath.Join(d, "vm.py")); err == nil {
				return filepath.Join(d, "vm.py")
			}
		}
	}
	t.Skip("vm-rig's vm.py not found (set VM_RIG_DIR)")
	return ""
}

// buildPlugin builds cmd/manila-csi-plugin, statically, into a directory
// the guests get as /share.
func buildPlugin(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd/manila-csi-plugin")); err != nil {
		t.Skipf("cmd/manila-csi-plugin is not in this tree: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "manila-csi-plugin"), "./cmd/manila-csi-plugin")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	return dir
}

type guest struct {
	t     *testing.T
	vmpy  string
	name  string
	sock  string
	node  csi.NodeClient
	close func()
}

func (g *guest) vm(args ...string) (string, error) {
	out, err := exec.Command(g.vmpy, args...).CombinedOutput()
	return string(out), err
}

// sh runs a shell command in the guest.
func (g *guest) sh(script string) (string, error) {
	out, err := g.vm("exec", g.name, "--timeout", "90", "--", "sh", "-c", script)
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", script, err, out)
	}
	return out, nil
}

func startGuest(t *testing.T, vmpy, name, shareDir string) *guest {
	t.Helper()
	g := &guest{t: t, vmpy: vmpy, name: name, sock: filepath.Join(t.TempDir(), name+".sock")}
	if out, err := g.vm("start", name, "--share", shareDir, "--nfs-forward", "2049", "--forward", g.sock+"=unix:/csi/csi.sock"); err != nil {
		t.Fatalf("starting guest %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := g.vm("stop", name, "--rm"); err != nil {
			t.Errorf("stopping guest %s: %v %s", name, err, out)
		}
	})
	if out, err := g.vm("spawn", name, "--log", "/var/log/csi.log", "--", "/share/manila-csi-plugin",
		"--endpoint", "unix:///csi/csi.sock", "--provide-controller-service=false", "--nodeid", name,
		"--node-addresses", guestAddress, "-v", "2"); err != nil {
		t.Fatalf("starting the plugin in %s: %v\n%s", name, err, out)
	}
	conn, err := grpc.NewClient("unix://"+g.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	g.node, g.close = csi.NewNodeClient(conn), func() { _ = conn.Close() }
	t.Cleanup(g.close)
	return g
}

func (g *guest) staging(vol string) string {
	return "/var/lib/kubelet/plugins/kubernetes.io/csi/" + manilanode.DefaultDriverName + "/" + vol + "/globalmount"
}

func (g *guest) target(vol string) string {
	return "/var/lib/kubelet/pods/pod-" + g.name + "/volumes/kubernetes.io~csi/pv/mount"
}

// waitInfo waits until the plugin answers NodeGetInfo.
func (g *guest) waitInfo(ctx context.Context) (string, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := g.node.NodeGetInfo(cctx, &csi.NodeGetInfoRequest{})
		cancel()
		if err == nil {
			return resp.GetNodeId(), nil
		}
		select {
		case <-ctx.Done():
			log, _ := g.sh("cat /var/log/csi.log")
			return "", fmt.Errorf("the plugin in %s never answered: %v\n%s", g.name, err, log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestNFSInTwoGuestsOnTheRealRig(t *testing.T) {
	env := requireManila(t)
	vmpy := vmRig(t)
	nfsType := os.Getenv("E2E_MANILA_NFS_TYPE")
	if nfsType == "" {
		nfsType = "cephfsnfstype"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := &steps{t: t}
	defer s.report()
	var shareDir string
	s.do("build cmd/manila-csi-plugin (static)", func() error { shareDir = buildPlugin(t); return nil })
	c := cloud(t, ctx, env)
	var share *openstack.Share
	var rule *openstack.AccessRule
	t.Cleanup(func() { cleanupNFS(t, c, share, rule) })

	var g1, g2 *guest
	s.do("guest g1 boot + plugin", func() error {
		g1 = startGuest(t, vmpy, "mn1", shareDir)
		id, err := g1.waitInfo(ctx)
		if err == nil && id != "mn1/"+guestAddress {
			err = fmt.Errorf("node id %q", id)
		}
		return err
	})
	s.do("guest g2 boot + plugin", func() error {
		g2 = startGuest(t, vmpy, "mn2", shareDir)
		_, err := g2.waitInfo(ctx)
		return err
	})
	s.do("share create 1 GiB NFS (-> available)", func() (err error) {
		share, err = c.CreateShare(ctx, openstack.CreateShareOpts{Name: "e2e-manilanode-nfs", Protocol: "NFS", SizeGiB: 1, ShareType: nfsType})
		if err != nil {
			return err
		}
		share, err = c.WaitShare(ctx, share.ID, func(sh *openstack.Share) bool { return sh.Status == openstack.ShareAvailable })
		return err
	})
	s.do("ip access rule 127.0.0.1 rw (-> active)", func() (err error) {
		rule, err = c.GrantAccess(ctx, openstack.GrantAccessOpts{ShareID: share.ID, AccessType: openstack.AccessTypeIP, AccessTo: "127.0.0.1", AccessLevel: "rw"})
		if err != nil {
			return err
		}
		rule, err = c.WaitAccessRule(ctx, share.ID, rule.ID)
		return err
	})
	var exportPath string
	s.do("export location", func() error {
		locs, err := c.ListExportLocations(ctx, share.ID)
		if err != nil || len(locs) == 0 {
			return fmt.Errorf("export locations %v: %v", locs, err)
		}
		_, exportPath, _ = strings.Cut(locs[0].Path, ":/")
		exportPath = "/" + exportPath
		return nil
	})
	vol := share.ID
	vctx := func(version string) map[string]string {
		return map[string]string{manilanode.KeyShareID: share.ID, manilanode.KeyProtocol: manilanode.ProtocolNFS,
			manilanode.KeyExportLocation: guestNFSServer + ":" + exportPath, manilanode.KeyNFSVersion: version,
			manilanode.KeyNFSMountOptions: "proto=tcp,port=2049,addr=" + guestNFSServer + ",clientaddr=" + guestAddress + ",timeo=100,retrans=2"}
	}
	stage := func(g *guest, version string) error {
		_, err := g.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: g.staging(vol), VolumeCapability: rwx, VolumeContext: vctx(version)})
		return err
	}
	publish := func(g *guest) error {
		_, err := g.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: g.staging(vol), TargetPath: g.target(vol), VolumeCapability: rwx})
		return err
	}
	s.do("g1 NodeStageVolume (kernel NFS 4.1)", func() error { return stage(g1, "4.1") })
	s.do("g1 NodePublishVolume", func() error { return publish(g1) })
	s.do("g1 write 16 MiB + text", func() error {
		_, err := g1.sh("set -e; cd " + g1.target(vol) + "; echo hello-from-mn1 > hello.txt; dd if=/dev/urandom of=data bs=1M count=16 2>/dev/null; md5sum data > data.md5; sync")
		return err
	})
	s.do("g2 NodeStageVolume (kernel NFS 4.2)", func() error { return stage(g2, "4.2") })
	s.do("g2 NodePublishVolume", func() error { return publish(g2) })
	s.do("g2 read: same text and checksum", func() error {
		out, err := g2.sh("set -e; cd " + g2.target(vol) + "; cat hello.txt; md5sum -c data.md5")
		if err == nil && !strings.Contains(out, "hello-from-mn1") {
			err = fmt.Errorf("read %q", out)
		}
		return err
	})
	s.do("g2 NodeGetVolumeStats (size = share quota)", func() error {
		resp, err := g2.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: g2.target(vol)})
		if err != nil {
			return err
		}
		if total := resp.GetUsage()[0].GetTotal(); total != 1<<30 {
			return fmt.Errorf("total %d bytes, want 1 GiB", total)
		}
		return nil
	})
	for _, g := range []*guest{g1, g2} {
		s.do(g.name+" NodeUnpublishVolume", func() error {
			_, err := g.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: g.target(vol)})
			return err
		})
		s.do(g.name+" NodeUnstageVolume", func() error {
			_, err := g.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: g.staging(vol)})
			return err
		})
		s.do(g.name+" no NFS mount left", func() error {
			out, err := g.sh("grep -c ' nfs' /proc/mounts || true")
			if err == nil && strings.TrimSpace(out) != "0" {
				err = fmt.Errorf("%s NFS mounts left", strings.TrimSpace(out))
			}
			return err
		})
	}
	removeSteps(ctx, s, c, "ip", &share, &rule)
}

func cleanupNFS(t *testing.T, c openstack.ShareCloud, share *openstack.Share, rule *openstack.AccessRule) {
	if share == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	removeShare(ctx, t, c, share, rule)
}
