// Package sanity runs csi-sanity against the Manila driver with its node
// service in a vm-rig guest: the controller in-process on the host,
// talking to the emulator's Manila over HTTP; the plugin (node service
// only) in the guest, mounting each NFS share with the guest kernel's
// NFSv3 client from the emulator's real NFS export. Every path the suite
// makes or checks is the guest's. `make e2e-vm` runs it.
package sanity

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
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
	g := guestPaths{ctx: ctx, node: node}
	manilaharness.RunOn(t, manilaharness.Options{Protocol: "NFS", ShareType: "cephfsnfstype",
		Parameters: map[string]string{"nfsVersion": "3", "nfs-mountOptions": manilavm.NFSv3Options}},
		manilaharness.Target{ConfPath: conf, ClusterID: "sanity-vm", Node: &manilaharness.RemoteNode{
			Client:            node.CSI,
			TargetPath:        manilavm.KubeletRoot + "/sanity/target",
			StagingPath:       manilavm.KubeletRoot + "/sanity/staging",
			CreateTargetDir:   g.mkdir,
			CreateStagingDir:  g.mkdir,
			RemoveTargetPath:  g.rmdirs,
			RemoveStagingPath: g.rmdirs,
			CheckPath:         g.kind,
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

// guestPaths makes, removes and inspects paths in the guest.
type guestPaths struct {
	ctx  context.Context
	node *manilavm.Node
}

func (g guestPaths) mkdir(p string) (string, error) {
	_, err := g.node.G.Exec(g.ctx, "mkdir", "-p", p)
	return p, err
}

// rmdirs removes p and the empty directories in it; never a file, so a
// share mounted there by mistake loses nothing.
func (g guestPaths) rmdirs(p string) error {
	_, err := g.node.G.Exec(g.ctx, "sh", "-c", `[ ! -e "$1" ] || { rmdir "$1"/* 2>/dev/null; rmdir "$1"; }`, "rmdirs", p)
	return err
}

func (g guestPaths) kind(p string) (sanity.PathKind, error) {
	out, err := g.node.G.Exec(g.ctx, "sh", "-c",
		`if [ -f "$1" ]; then echo file; elif [ -d "$1" ]; then echo directory; elif [ -e "$1" ]; then echo other; else echo not_found; fi`, "kind", p)
	if err != nil {
		return "", err
	}
	switch k := strings.TrimSpace(out.Stdout); k {
	case "file":
		return sanity.PathIsFile, nil
	case "directory":
		return sanity.PathIsDir, nil
	case "other":
		return sanity.PathIsOther, nil
	case "not_found":
		return sanity.PathIsNotFound, nil
	default:
		return "", fmt.Errorf("checking %s in the guest: %q", p, k)
	}
}
