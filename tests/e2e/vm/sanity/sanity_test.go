// Package sanity runs csi-sanity's node specs (csi-test v5, focus "Node
// Service") with the node endpoint in a vm-rig guest and the controller
// endpoint on the host (vmenv): every staged volume is a virtio-blk disk
// the emulator hot-plugged into the guest, formatted and mounted by the
// guest's kernel. Gated by CINDER_CSI_E2E_VM (make e2e-vm).
package sanity

import (
	"context"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/vm/vmenv"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
)

// timeBox: boot, then about 40 node specs at 2-6 s each under TCG.
const timeBox = 10 * time.Minute

func TestSanityNodeInGuest(t *testing.T) {
	e := vmenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	if err := e.StartPlugin(ctx); err != nil {
		t.Fatal(err)
	}
	inGuest := func(script string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return e.Guest.Sh(cctx, script)
	}
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + e.DriverSocket(t)
	cfg.ControllerAddress = "unix://" + e.CtrlSock
	cfg.TestVolumeSize = 1 << 30
	cfg.TestVolumeExpandSize = 2 << 30
	cfg.IDGen = uuidGen{}
	sanitykit.NodeInGuest(&cfg, vmenv.KubeletRoot, inGuest)
	sanity.Test(t, cfg)
	if err := e.NoMountsLeft(ctx); err != nil {
		t.Error(err)
	}
	if n := len(e.Emu.Volumes()); n != 0 {
		t.Errorf("%d volumes left in the emulator", n)
	}
}

type uuidGen struct{}

func (uuidGen) GenerateUniqueValidVolumeID() string { return sanitykit.NewUUID() }
func (uuidGen) GenerateInvalidVolumeID() string     { return "not-a-cinder-volume-id" }
func (uuidGen) GenerateUniqueValidNodeID() string   { return sanitykit.NewUUID() }
func (uuidGen) GenerateInvalidNodeID() string       { return "not-a-nova-server-id" }
