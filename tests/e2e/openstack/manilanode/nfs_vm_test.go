package manilanode

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
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
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
	guestNFSServer = vmrig.HostAddress
	guestAddress   = vmrig.GuestAddress
)

type guest struct {
	*vmrig.Guest
	node csi.NodeClient
}

// sh runs a shell command in the guest.
func (g *guest) sh(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return g.Sh(ctx, script)
}

func startGuest(t *testing.T, r *vmrig.Rig, prefix, shareDir string) *guest {
	t.Helper()
	sock := filepath.Join(t.TempDir(), prefix+".sock")
	g := &guest{Guest: r.Start(t, prefix, vmrig.Options{Share: shareDir, NFSForward: 2049,
		Forwards: []vmrig.Forward{{Host: sock, Guest: "unix:/csi/csi.sock"}}})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := g.Spawn(ctx, "/var/log/csi.log", "/share/manila-csi-plugin",
		"--endpoint", "unix:///csi/csi.sock", "--provide-controller-service=false", "--nodeid", g.Name,
		"--node-addresses", guestAddress, "-v", "2"); err != nil {
		t.Fatalf("starting the plugin in %s: %v", g.Name, err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	g.node = csi.NewNodeClient(conn)
	t.Cleanup(func() { _ = conn.Close() })
	return g
}

func (g *guest) staging(vol string) string {
	return "/var/lib/kubelet/plugins/kubernetes.io/csi/" + manilanode.DefaultDriverName + "/" + vol + "/globalmount"
}

func (g *guest) target(_ string) string {
	return "/var/lib/kubelet/pods/pod-" + g.Name + "/volumes/kubernetes.io~csi/pv/mount"
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
			return "", fmt.Errorf("the plugin in %s never answered: %v\n%s", g.Name, err, log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestNFSInTwoGuestsOnTheRealRig(t *testing.T) {
	env := requireManila(t)
	r := vmrig.Require(t)
	nfsType := os.Getenv("E2E_MANILA_NFS_TYPE")
	if nfsType == "" {
		nfsType = "cephfsnfstype"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := &steps{t: t}
	defer s.report()
	var shareDir string
	s.do("build cmd/manila-csi-plugin (static)", func() error { shareDir = vmrig.BuildPlugin(t, "./cmd/manila-csi-plugin"); return nil })
	c := cloud(ctx, t, env)
	var share *openstack.Share
	var rule *openstack.AccessRule
	t.Cleanup(func() { cleanupNFS(t, c, share, rule) })

	var g1, g2 *guest
	s.do("guest g1 boot + plugin", func() error {
		g1 = startGuest(t, r, "mn1", shareDir)
		id, err := g1.waitInfo(ctx)
		if err == nil && id != g1.Name+"/"+guestAddress {
			err = fmt.Errorf("node id %q", id)
		}
		return err
	})
	s.do("guest g2 boot + plugin", func() error {
		g2 = startGuest(t, r, "mn2", shareDir)
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
		s.do(g.Name+" NodeUnpublishVolume", func() error {
			_, err := g.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: g.target(vol)})
			return err
		})
		s.do(g.Name+" NodeUnstageVolume", func() error {
			_, err := g.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: g.staging(vol)})
			return err
		})
		s.do(g.Name+" no NFS mount left", func() error {
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
