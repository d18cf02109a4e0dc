// Package sanity runs csi-sanity against the Manila driver with its node
// service in a vm-rig guest: the controller in-process on the host,
// talking to the emulator's Manila over HTTP; the plugin (node service
// only) in the guest, mounting each NFS share with the guest kernel's
// NFSv3 client from the emulator's real NFS export. Every path the suite
// makes or checks is the guest's. `make e2e-vm` runs it.
package sanity

import (
	"context"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// timeBox bounds the whole run: boot and plugin start ~30 s under TCG,
// the suite's ~100 specs a few minutes (measured in tests/e2e/README.md).
const timeBox = 15 * time.Minute

func TestSanityManilaNFSNodeInAGuest(t *testing.T) {
	r := vmrig.RequireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	emu, conf, port := manilavm.Emulator(t)
	node := manilavm.StartNode(ctx, t, r, manilaharness.NodeName, manilavm.PluginDir(t, r), port)
	inGuest := func(script string) (string, error) { return node.G.Sh(ctx, script) }
	manilaharness.RunOn(t, manilaharness.Options{Protocol: "NFS", ShareType: "cephfsnfstype",
		Parameters: map[string]string{"nfsVersion": "3", "nfs-mountOptions": manilavm.NFSv3Options}},
		manilaharness.Target{ConfPath: conf, ClusterID: "sanity-vm", Node: &manilaharness.RemoteNode{
			Client: node.CSI,
			Paths:  func(cfg *sanity.TestConfig) { sanitykit.GuestPaths(cfg, manilavm.KubeletRoot, inGuest) },
			// Runs from t.Cleanup, after the time box's cancel.
			MountsLeft: func(t *testing.T) []string {
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				left, err := node.Mounts(cctx, "nfs")
				if err != nil {
					t.Errorf("listing the guest's mounts: %v", err)
				}
				return left
			},
		}}, t.TempDir())
	t.Logf("OpenStack API calls: %d", emu.TotalCalls())
}
