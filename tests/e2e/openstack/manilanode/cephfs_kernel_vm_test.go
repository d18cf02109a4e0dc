package manilanode

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// TestCephFSKernelInAGuestFuseOnTheHost mounts one CephFS share of the
// rig with the driver's two CephFS mounters at once: the kernel client in
// a vm-rig guest (the plugin binary, cephfs-mounter kernel: mount.ceph
// with secretfile=) and ceph-fuse on the host (a node server in-process);
// what one writes the other reads. The guest reaches the rig's Ceph
// through manilavm's tcprelay (cephkernel.go).
func TestCephFSKernelInAGuestFuseOnTheHost(t *testing.T) {
	env := requireManila(t)
	r := vmrig.Require(t)
	ports, err := manilavm.CephPorts(env.cephConf)
	if err != nil {
		t.Skipf("the rig's Ceph daemons: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := newSteps(t)
	defer s.Report()
	var dir string
	s.Do("build plugin + tcprelay, copy mount.ceph and modules", func() error {
		dir = manilavm.PluginDir(t, r)
		manilavm.AddCephKernelClient(t, dir)
		return nil
	})
	relay := manilavm.StartRelay(t, ports)
	var g *manilavm.Node
	s.Do("guest boot + modules + plugin", func() error {
		g = manilavm.StartNode(ctx, t, r, "mk1", dir, relay.Port())
		return nil
	})
	s.Do(fmt.Sprintf("guest mount.ceph + tcprelay on %d Ceph ports", len(ports)), func() error { return g.StartCephClient(ctx, ports) })
	c := cloud(ctx, t, env)
	clientID := "mnodek-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	host := newNode(t, "host", t.TempDir())
	var share *openstack.Share
	var rule *openstack.AccessRule
	t.Cleanup(func() { cleanup(t, c, env, share, rule, clientID, host) })
	var export string
	s.Do("share 1 GiB CEPHFS + cephx rule (-> active with key) + export", func() (err error) {
		share, rule, export, err = cephShare(ctx, c, env, clientID)
		return err
	})
	vol := share.ID
	vctx := func(mounter string) map[string]string {
		return map[string]string{manilanode.KeyShareID: share.ID, manilanode.KeyProtocol: manilanode.ProtocolCephFS,
			manilanode.KeyExportLocation: export, manilanode.KeyCephClientID: clientID, manilanode.KeyCephFSMounter: mounter}
	}
	secrets := map[string]string{manilanode.KeyUserID: clientID, manilanode.KeyUserKey: rule.AccessKey}
	s.Do("guest NodeStageVolume (kernel client)", func() error {
		_, err := g.CSI.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: g.StagingPath(vol),
			VolumeCapability: manilavm.RWX, VolumeContext: vctx(manilanode.MounterKernel), Secrets: secrets})
		return err
	})
	s.Do("guest NodePublishVolume", func() error {
		_, err := g.CSI.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: g.StagingPath(vol),
			TargetPath: g.TargetPath(vol), VolumeCapability: manilavm.RWX})
		return err
	})
	s.Do("guest write 16 MiB + md5", func() error {
		_, err := g.G.Sh(ctx, "set -e; cd "+g.TargetPath(vol)+"; dd if=/dev/urandom of=data bs=1M count=16 2>/dev/null; md5sum data | cut -d' ' -f1 > data.md5; sync")
		return err
	})
	s.Do("guest NodeGetVolumeStats (size = share quota)", func() error {
		resp, err := g.CSI.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: g.TargetPath(vol)})
		if err == nil && resp.GetUsage()[0].GetTotal() != 1<<30 {
			err = fmt.Errorf("total %d bytes, want 1 GiB", resp.GetUsage()[0].GetTotal())
		}
		return err
	})
	s.Do("host NodeStageVolume (ceph-fuse)", func() error { return host.stage(ctx, vol, vctx(manilanode.MounterFuse), secrets) })
	s.Do("host NodePublishVolume", func() error { return host.publish(ctx, vol) })
	s.Do("host read: same checksum", func() error { return sameMD5(host.target(vol)) })
	s.Do("host write a text, guest reads it", func() error {
		if err := writeSynced(filepath.Join(host.target(vol), "from-host.txt"), []byte("hello-from-host\n")); err != nil {
			return err
		}
		out, err := g.G.Sh(ctx, "cat "+g.TargetPath(vol)+"/from-host.txt")
		if err == nil && strings.TrimSpace(out) != "hello-from-host" {
			err = fmt.Errorf("guest read %q", out)
		}
		return err
	})
	s.Do("guest NodeUnpublishVolume + NodeUnstageVolume", func() error {
		if _, err := g.CSI.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: g.TargetPath(vol)}); err != nil {
			return err
		}
		_, err := g.CSI.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: g.StagingPath(vol)})
		return err
	})
	s.Do("guest no ceph mount left", func() error {
		left, err := g.Mounts(ctx, "ceph")
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("mounts left: %v", left)
		}
		return err
	})
	s.Do("host NodeUnpublishVolume + NodeUnstageVolume", func() error {
		if err := host.unpublish(ctx, vol); err != nil {
			return err
		}
		return host.unstage(ctx, vol)
	})
	s.Do("host nothing left (mounts, key file, ceph-fuse)", func() error { return nothingLeft(t, host, vol) })
	removeSteps(ctx, s, c, "cephx", &share, &rule)
	s.Do("cephx user gone from Ceph", func() error {
		if cephxUserExists(env, clientID) {
			return fmt.Errorf("client.%s is still in Ceph", clientID)
		}
		return nil
	})
}

// cephShare makes a 1 GiB CephFS share with a cephx rule for clientID and
// returns them with the preferred export location.
func cephShare(ctx context.Context, c openstack.ShareCloud, env manilaEnv, clientID string) (*openstack.Share, *openstack.AccessRule, string, error) {
	share, err := c.CreateShare(ctx, openstack.CreateShareOpts{Name: "e2e-manilanode-" + clientID, Protocol: "CEPHFS", SizeGiB: 1, ShareType: env.shareType})
	if err != nil {
		return nil, nil, "", err
	}
	if share, err = c.WaitShare(ctx, share.ID, func(sh *openstack.Share) bool { return sh.Status == openstack.ShareAvailable }); err != nil {
		return share, nil, "", err
	}
	rule, err := c.GrantAccess(ctx, openstack.GrantAccessOpts{ShareID: share.ID, AccessType: openstack.AccessTypeCephx, AccessTo: clientID, AccessLevel: "rw"})
	if err != nil {
		return share, nil, "", err
	}
	if rule, err = c.WaitAccessRule(ctx, share.ID, rule.ID); err != nil {
		return share, rule, "", err
	}
	locs, err := c.ListExportLocations(ctx, share.ID)
	if err != nil || len(locs) == 0 {
		return share, rule, "", fmt.Errorf("export locations %v: %v", locs, err)
	}
	export := locs[0].Path
	for _, l := range locs {
		if l.Preferred {
			export = l.Path
		}
	}
	return share, rule, export, nil
}

// sameMD5 checks dir/data against the checksum in dir/data.md5.
func sameMD5(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	want, err := os.ReadFile(filepath.Join(dir, "data.md5"))
	if err != nil {
		return err
	}
	if got := fmt.Sprintf("%x", md5.Sum(data)); got != strings.TrimSpace(string(want)) {
		return fmt.Errorf("md5 %s of %d bytes, written %s", got, len(data), strings.TrimSpace(string(want)))
	}
	return nil
}
