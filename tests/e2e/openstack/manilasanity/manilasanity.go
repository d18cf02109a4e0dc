// Package manilasanity runs csi-sanity for the Manila driver on the
// openstack-rig's real Manila Zed (../shared/tools/openstack-rig/manila):
// the controller through the real cloud layer, NFS shares on CephFS
// through NFS-Ganesha (./nfs) and native CephFS with cephx (./cephfs). The
// CephFS run's node service mounts every share for real with ceph-fuse
// (the cephx key from the publish context); the NFS run's binds a
// directory per share, as this host has no kernel NFS client (NFS node
// specs run for real in a guest: tests/e2e/manilavm/sanity). Leak checks
// after each run: the run's shares (by its cluster id), the snapshots it
// made, and the cephx users Ceph holds.
package manilasanity

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
)

// cephConf is the Manila rig's own ceph.conf (its README, pitfall 6).
const cephConf = "/var/lib/openstack-rig-manila/etc/ceph/ceph.conf"

// Run runs the suite on the rig for one protocol and share type.
func Run(t *testing.T, o manilaharness.Options) {
	env := rig.Require(t)
	requireManila(t)
	work := t.TempDir()
	dirs := filepath.Join(work, "shares")
	users := cephxUsers(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	target := manilaharness.Target{
		ConfPath:  env.CloudConf,
		ClusterID: fmt.Sprintf("sanity-rig-%x", b),
		// Stand-in data directories: the node under test binds one per
		// share; what Manila exports is checked by the node's rig tests.
		ShareDir: func(id string) (string, bool) {
			d := filepath.Join(dirs, filepath.Base(id))
			return d, os.MkdirAll(d, 0o755) == nil
		},
		ExtraLeakCheck: func(t *testing.T) {
			after := cephxUsers(t)
			for _, u := range after {
				if slices.Contains(users, u) {
					continue
				}
				// The run's identities are named after csi-sanity's volume
				// names ("sanity-..."). Other suites share the rig (the
				// differential test's "diff-..." users, Ganesha's per-export
				// users of their NFS shares): logged, not counted.
				if strings.HasPrefix(u, "client.sanity") {
					t.Errorf("leaked cephx user %s", u)
				} else {
					t.Logf("cephx user %s appeared during the run; not one of this run's identities", u)
				}
			}
			t.Logf("leak check: cephx users %d before, %d after", len(users), len(after))
		},
		IdempotentCount: 2,
	}
	if o.Protocol == "CEPHFS" {
		if _, err := exec.LookPath("ceph-fuse"); err != nil {
			t.Skip("the CephFS node specs mount with ceph-fuse, which is not installed")
		}
		cephDir := filepath.Join(work, "ceph")
		if err := os.MkdirAll(cephDir, 0o700); err != nil {
			t.Fatal(err)
		}
		target.Mounter = manilanode.NewHostMounter(cephDir)
	}
	manilaharness.RunOn(t, o, target, work)
}

func requireManila(t *testing.T) {
	t.Helper()
	// hack/e2e-openstack.sh sets MANILA_UP once manila-api answers.
	if os.Getenv("MANILA_UP") != "1" {
		t.Skip("the rig's Manila is not up (MANILA_UP is not 1; hack/e2e-openstack.sh sets it when manila-api answers)")
	}
	// Opt-in: the rig's CephFS pool is 20 GiB, thick-provisioned, and
	// Manila's scheduler learns freed space only from the share service's
	// periodic report; csi-sanity creating shares faster than that makes
	// the scheduler refuse creates with "Insufficient free space ...
	// requested / avail: 1/0" (seen twice on a quiet machine, 17-20 specs
	// each), which is the rig's accounting, not the driver.
	if os.Getenv("E2E_MANILA_SANITY") != "1" {
		t.Skip("csi-sanity on the rig's Manila is opt-in (E2E_MANILA_SANITY=1): its 20 GiB thick pool refuses creates between capacity reports at csi-sanity's rate")
	}
	manilanodetest.RequireMountNamespace(t)
}

// cephxUsers lists the client.* entities of the rig's Ceph.
func cephxUsers(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("ceph", "auth", "ls")
	cmd.Env = append(os.Environ(), "CEPH_CONF="+cephConf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ceph auth ls: %v", err)
	}
	var users []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "client.") {
			users = append(users, strings.TrimSpace(l))
		}
	}
	return users
}
