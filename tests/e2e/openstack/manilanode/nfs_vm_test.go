package manilanode

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// The NFS test runs the real plugin binary (node service only) in two
// vm-rig guests, whose kernels have the NFS client this host lacks, and
// mounts a share of the rig's NFS-Ganesha backend. The guests reach
// Ganesha as 10.0.2.100:2049 through QEMU's guestfwd (socat to host
// 127.0.0.1:2049), so Ganesha sees every guest as 127.0.0.1: that is the
// access rule the test grants, and the export location's host is
// rewritten to 10.0.2.100, as --runtime-config's matchExportLocationAddress
// or a real network would make it. The steps after the rule are the
// emulator's two-guest test's (manilavm.TwoNodes).

func TestNFSInTwoGuestsOnTheRealRig(t *testing.T) {
	env := requireManila(t)
	r := vmrig.Require(t)
	nfsType := os.Getenv("E2E_MANILA_NFS_TYPE")
	if nfsType == "" {
		nfsType = "cephfsnfstype"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := newSteps(t)
	defer s.Report()
	var shareDir string
	s.Do("build cmd/manila-csi-plugin (static)", func() error { shareDir = manilavm.PluginDir(t, r); return nil })
	c := cloud(ctx, t, env)
	var share *openstack.Share
	var rule *openstack.AccessRule
	t.Cleanup(func() { cleanupNFS(t, c, share, rule) })

	var nodes [2]*manilavm.Node
	for i, name := range []string{"mn1", "mn2"} {
		s.Do(name+" boot + modules + plugin", func() error {
			nodes[i] = manilavm.StartNode(ctx, t, r, name, shareDir, 2049)
			return nil
		})
	}
	s.Do("share create 1 GiB NFS (-> available)", func() (err error) {
		share, err = c.CreateShare(ctx, openstack.CreateShareOpts{Name: "e2e-manilanode-nfs", Protocol: "NFS", SizeGiB: 1, ShareType: nfsType})
		if err != nil {
			return err
		}
		share, err = c.WaitShare(ctx, share.ID, func(sh *openstack.Share) bool { return sh.Status == openstack.ShareAvailable })
		return err
	})
	s.Do("ip access rule 127.0.0.1 rw (-> active)", func() (err error) {
		rule, err = c.GrantAccess(ctx, openstack.GrantAccessOpts{ShareID: share.ID, AccessType: openstack.AccessTypeIP, AccessTo: manilavm.NodeAddress, AccessLevel: "rw"})
		if err != nil {
			return err
		}
		rule, err = c.WaitAccessRule(ctx, share.ID, rule.ID)
		return err
	})
	var exportPath string
	s.Do("export location", func() error {
		locs, err := c.ListExportLocations(ctx, share.ID)
		if err != nil || len(locs) == 0 {
			return fmt.Errorf("export locations %v: %v", locs, err)
		}
		_, exportPath, _ = strings.Cut(locs[0].Path, ":/")
		exportPath = "/" + exportPath
		return nil
	})
	vctx := func(version string) map[string]string {
		return map[string]string{manilanode.KeyShareID: share.ID, manilanode.KeyProtocol: manilanode.ProtocolNFS,
			manilanode.KeyExportLocation: vmrig.HostAddress + ":" + exportPath, manilanode.KeyNFSVersion: version,
			manilanode.KeyNFSMountOptions: "proto=tcp,port=2049,addr=" + vmrig.HostAddress + ",clientaddr=" + vmrig.GuestAddress + ",timeo=100,retrans=2"}
	}
	manilavm.TwoNodes{Volume: share.ID, Nodes: nodes, Contexts: [2]map[string]string{vctx("4.1"), vctx("4.2")},
		Labels: [2]string{"kernel NFS 4.1", "kernel NFS 4.2"}, SizeBytes: 1 << 30, FSType: "nfs"}.Run(ctx, s)
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
