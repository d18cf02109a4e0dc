// Package nfs runs the Manila node service in two vm-rig guests against
// the emulator's real NFS export: a share and an ip rule made through the
// cloud layer, staged by each guest's kernel NFSv3 client, written on one
// and read on the other, unstaged, then removed; with the times per step.
// `make e2e-vm` runs it.
package nfs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// timeBox: two boots and plugin starts take ~1 min under TCG, the steps
// a few seconds (tests/e2e/README.md).
const timeBox = 8 * time.Minute

func TestNFSInTwoGuestsOnTheEmulatorsExport(t *testing.T) {
	r := vmrig.RequireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	s := &manilavm.Steps{T: t, ReportEnv: "E2E_MANILAVM_NFS_REPORT"}
	defer s.Report()
	var dir, conf string
	var port int
	s.Do("emulator with NFS export + build plugin", func() error {
		_, conf, port = manilavm.Emulator(t)
		dir = manilavm.PluginDir(t, r)
		return nil
	})
	c := cloud(ctx, t, conf)
	var nodes [2]*manilavm.Node
	for i, name := range []string{"mvn1", "mvn2"} {
		s.Do(name+" boot + modules + plugin", func() error {
			nodes[i] = manilavm.StartNode(ctx, t, r, name, dir, port)
			return nil
		})
	}
	var share *openstack.Share
	s.Do("share create 1 GiB NFS (-> available)", func() (err error) {
		share, err = c.CreateShare(ctx, openstack.CreateShareOpts{Name: "e2e-manilavm-nfs", Protocol: "NFS", SizeGiB: 1, ShareType: "cephfsnfstype"})
		if err == nil {
			share, err = c.WaitShare(ctx, share.ID, func(sh *openstack.Share) bool { return sh.Status == openstack.ShareAvailable })
		}
		return err
	})
	var rule *openstack.AccessRule
	s.Do("ip access rule "+manilavm.NodeAddress+" rw (-> active)", func() (err error) {
		rule, err = c.GrantAccess(ctx, openstack.GrantAccessOpts{ShareID: share.ID, AccessType: openstack.AccessTypeIP, AccessTo: manilavm.NodeAddress, AccessLevel: "rw"})
		if err == nil {
			rule, err = c.WaitAccessRule(ctx, share.ID, rule.ID)
		}
		return err
	})
	var export string
	s.Do("export location", func() error {
		locs, err := c.ListExportLocations(ctx, share.ID)
		if err != nil || len(locs) == 0 || !strings.HasPrefix(locs[0].Path, vmrig.HostAddress+":/") {
			return fmt.Errorf("export locations %v: %v", locs, err)
		}
		export = locs[0].Path
		return nil
	})
	vctx := map[string]string{manilanode.KeyShareID: share.ID, manilanode.KeyProtocol: manilanode.ProtocolNFS,
		manilanode.KeyExportLocation: export, manilanode.KeyNFSVersion: "3", manilanode.KeyNFSMountOptions: manilavm.NFSv3Options}
	manilavm.TwoNodes{Volume: share.ID, Nodes: nodes, Contexts: [2]map[string]string{vctx, vctx},
		Labels: [2]string{"kernel NFSv3", "kernel NFSv3"}, SizeBytes: 1 << 30, FSType: "nfs"}.Run(ctx, s)
	s.Do("revoke the ip rule (-> gone)", func() error {
		if err := c.RevokeAccess(ctx, share.ID, rule.ID); err != nil {
			return err
		}
		return c.WaitAccessRuleGone(ctx, share.ID, rule.ID)
	})
	s.Do("delete the share (-> gone)", func() error {
		if err := c.DeleteShare(ctx, share.ID); err != nil {
			return err
		}
		return c.WaitShareGone(ctx, share.ID)
	})
}

func cloud(ctx context.Context, t *testing.T, conf string) openstack.ShareCloud {
	t.Helper()
	set, err := openstack.NewShareClouds(ctx, []string{conf}, openstack.Options{ReloadInterval: -1})
	if err != nil {
		t.Fatalf("connecting to the emulator's Manila: %v", err)
	}
	c, err := set.ForSecrets(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
