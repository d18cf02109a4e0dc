// Package manilanode runs the Manila node service against the real
// openstack-rig's Manila with CephFS (../shared/tools/openstack-rig/manila):
// a share and a cephx rule made through the cloud layer, staged with
// ceph-fuse by two node servers ("nodes"), written on one and read on the
// other, a killed ceph-fuse daemon detected and remounted, a plugin
// restart survived, then everything removed. Gated like the other rig
// tests (CINDER_CSI_E2E_OPENSTACK=1) and skipped without Manila, root or
// ceph-fuse.
package manilanode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

func TestMain(m *testing.M) { os.Exit(manilanodetest.RunInPrivateMountNamespace(m)) }

// manilaEnv is what the Manila part of the rig provides.
type manilaEnv struct {
	cloudConf string
	cephConf  string // the Manila rig's own ceph.conf (admin), for leftover checks
	shareType string
}

func requireManila(t *testing.T) manilaEnv {
	t.Helper()
	if os.Getenv(rig.EnvGate) == "" {
		t.Skipf("end to end against the openstack-rig's Manila: set %s=1 (make e2e-openstack)", rig.EnvGate)
	}
	state := os.Getenv("RIG_STATE")
	if state == "" {
		state = "/var/lib/openstack-rig"
	}
	mstate := os.Getenv("MANILA_STATE")
	if mstate == "" {
		mstate = "/var/lib/openstack-rig-manila"
	}
	e := manilaEnv{
		cloudConf: filepath.Join(state, "cloud.conf"),
		cephConf:  filepath.Join(mstate, "etc/ceph/ceph.conf"),
		shareType: "cephfstype",
	}
	if v := os.Getenv("E2E_MANILA_CEPHFS_TYPE"); v != "" {
		e.shareType = v
	}
	for _, f := range []string{e.cloudConf, e.cephConf} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("the rig's Manila is not up (%v); run manila-up.sh", err)
		}
	}
	if _, err := exec.LookPath("ceph-fuse"); err != nil {
		t.Skip("needs ceph-fuse")
	}
	manilanodetest.RequireMountNamespace(t)
	return e
}

// newSteps records the time of each step for the closing table
// (E2E_MANILANODE_REPORT names a file to write it to).
func newSteps(t *testing.T) *manilavm.Steps {
	return &manilavm.Steps{T: t, ReportEnv: "E2E_MANILANODE_REPORT"}
}

// cloud returns the rig's Manila through the cloud layer.
func cloud(ctx context.Context, t *testing.T, e manilaEnv) openstack.ShareCloud {
	t.Helper()
	set, err := openstack.NewShareClouds(ctx, []string{e.cloudConf}, openstack.Options{ReloadInterval: -1})
	if err != nil {
		t.Fatalf("connecting to Manila: %v", err)
	}
	c, err := set.ForSecrets(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cephxUserExists asks the rig's Ceph whether client.<id> is still there.
func cephxUserExists(e manilaEnv, id string) bool {
	return exec.Command("ceph", "-c", e.cephConf, "auth", "get", "client."+id).Run() == nil
}

// removeSteps are a test's last steps: revoke the rule (of kind, for the
// step's name) and delete the share, each until gone. Each clears its
// variable, so the test's cleanup does not repeat what was done.
func removeSteps(ctx context.Context, s *manilavm.Steps, c openstack.ShareCloud, kind string, share **openstack.Share, rule **openstack.AccessRule) {
	s.Do("revoke the "+kind+" rule (-> gone)", func() error {
		if err := c.RevokeAccess(ctx, (*share).ID, (*rule).ID); err != nil {
			return err
		}
		err := c.WaitAccessRuleGone(ctx, (*share).ID, (*rule).ID)
		*rule = nil
		return err
	})
	s.Do("delete the share (-> gone)", func() error {
		if err := c.DeleteShare(ctx, (*share).ID); err != nil {
			return err
		}
		err := c.WaitShareGone(ctx, (*share).ID)
		*share = nil
		return err
	})
}

// removeShare is the cleanup's removal of what a failed test left: the
// rule (when any) best effort, then the share, reported when it stays.
// It says whether the share is gone.
func removeShare(ctx context.Context, t *testing.T, c openstack.ShareCloud, share *openstack.Share, rule *openstack.AccessRule) bool {
	if rule != nil {
		if err := c.RevokeAccess(ctx, share.ID, rule.ID); err == nil {
			_ = c.WaitAccessRuleGone(ctx, share.ID, rule.ID)
		}
	}
	if err := c.DeleteShare(ctx, share.ID); err != nil {
		t.Errorf("cleanup: deleting share %s: %v", share.ID, err)
		return false
	}
	if err := c.WaitShareGone(ctx, share.ID); err != nil {
		t.Errorf("cleanup: share %s not gone: %v", share.ID, err)
	}
	return true
}
