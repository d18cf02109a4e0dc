// Package peerpod_test proves the peer-pod attach with a real kernel: a
// vm-rig guest plays the pod VM and the emulator (real gophercloud HTTP) is
// Nova and Cinder in its VM hot-plug mode: an attach to the guest's server
// hot-plugs the volume as virtio-blk with the volume id as serial, as Nova
// does.
package peerpod_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
	"github.com/cinder-csi/cinder-csi/tests/peerpodkit"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// timeBox bounds the whole flow: two guest boots (5-7 s each under TCG,
// vm-rig README) and a few hot-plugs (about 1 s each) fit many times over.
const timeBox = 8 * time.Minute

type steps struct {
	t     *testing.T
	lines []string
}

func (s *steps) do(name string, f func() error) {
	s.t.Helper()
	start := time.Now()
	err := f()
	s.lines = append(s.lines, fmt.Sprintf("%-58s %7.2fs", name, time.Since(start).Seconds()))
	if err != nil {
		s.report()
		s.t.Fatalf("%s: %v", name, err)
	}
}

func (s *steps) report() { s.t.Logf("peer-pod flow steps:\n%s", strings.Join(s.lines, "\n")) }

func TestPeerPodVolumeInAGuestPodVM(t *testing.T) {
	r := vmrig.RequireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	s := &steps{t: t}
	defer s.report()

	emu, err := emulator.Start(emulator.Options{AvailabilityZones: []string{"nova"},
		Servers: []emulator.ServerSpec{{ID: "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01", Name: "worker-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	cfg, _, err := config.Parse("cloud.conf", []byte(emu.CloudConf("Global", "demo")))
	if err != nil {
		t.Fatal(err)
	}
	clouds, err := openstack.NewCloudsFromConfig(cfg, openstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := peerpodkit.New(clouds, "")
	if err != nil {
		t.Fatal(err)
	}
	att := drv.Attacher

	var volID string
	s.do("CreateVolume 1 GiB RWOP (peer-pod controller)", func() error {
		volID, err = drv.CreateVolume(ctx, "pv-peerpod-vm")
		return err
	})
	byID := "/dev/disk/by-id/virtio-" + volID[:20]

	pod := peerpod.PodRef{Namespace: "ns", Name: "web-0", UID: "uid-web-0"}
	vm1 := "9a1c2b3d-0000-4000-8000-000000000001"
	var attached <-chan error
	s.do("attach started before the pod VM exists", func() error {
		attached = drv.StartAttach(ctx, pod, volID)
		time.Sleep(500 * time.Millisecond)
		emu.AddBootingServer(emulator.ServerSpec{ID: vm1, Name: peerpod.InstanceName(pod.Name, "5e1f00aa77c34d21"), AZ: "nova"})
		return nil
	})
	var g1 *vmrig.Guest
	s.do("pod VM 1 boots (vm-rig guest; Nova server in BUILD)", func() error {
		g1 = r.Start(t, "peerpod1", vmrig.Options{QMP: true})
		// The emulator's VM mode: attachments to this server are
		// hot-plugged into the guest (virtio-blk, serial = volume id).
		return emu.SetServerGuest(vm1, &emulator.GuestSpec{QMPSocket: g1.QMPSocket()})
	})
	s.do("pod VM 1 ACTIVE -> Nova attach + hot-plug (in-use)", func() error {
		emu.SetServerStatus(vm1, "ACTIVE")
		if err := <-attached; err != nil {
			return err
		}
		return g1.WaitPath(ctx, byID, false)
	})
	s.do("in-VM check: by-id lookup, format blank, mount, write", func() error {
		out, err := g1.Sh(ctx, peerpodkit.GuestCheck(volID, `echo "written by pod VM 1" > /mnt/vol/data; cat /mnt/vol/data`))
		t.Logf("guest 1:\n%s", out)
		if err == nil && !strings.Contains(out, "formatted blank disk") {
			err = fmt.Errorf("the blank disk was not formatted")
		}
		return err
	})
	s.do("in-VM check again: existing filesystem kept", func() error {
		out, err := g1.Sh(ctx, peerpodkit.GuestCheck(volID, `cat /mnt/vol/data`))
		if err == nil && (!strings.Contains(out, "(kept)") || !strings.Contains(out, "written by pod VM 1")) {
			err = fmt.Errorf("filesystem or data not kept:\n%s", out)
		}
		return err
	})

	pod2 := peerpod.PodRef{Namespace: "ns", Name: "web-1", UID: "uid-web-1"}
	vm2 := "9a1c2b3d-0000-4000-8000-000000000002"
	emu.AddServer(emulator.ServerSpec{ID: vm2, Name: peerpod.InstanceName(pod2.Name, "77aa00bb11cc22dd"), AZ: "nova"})
	s.do("second pod's VM refused while pod VM 1 holds it (RWOP)", func() error {
		_, err := att.Attach(ctx, pod2, volID)
		if peerpod.Code(err).String() != "FailedPrecondition" {
			return fmt.Errorf("second pod's attach = %v, want FailedPrecondition", err)
		}
		t.Logf("refused: %v", err)
		return nil
	})

	s.do("pod 1's VM deleted before the detach (disk unplugged)", func() error {
		emu.DeleteServer(vm1, true) // Nova's cleanup failed: the Cinder attachment stays
		return g1.WaitPath(ctx, byID, true)
	})
	s.do("detach frees the volume of the deleted VM", func() error {
		if err := att.Detach(ctx, volID, vm1); err != nil {
			return err
		}
		for _, a := range emu.Attachments() {
			if a.VolumeID == volID {
				return fmt.Errorf("attachment %s to %s left", a.ID, a.ServerID)
			}
		}
		return nil
	})
	var g2 *vmrig.Guest
	s.do("pod VM 2 boots (vm-rig guest)", func() error {
		g2 = r.Start(t, "peerpod2", vmrig.Options{QMP: true})
		return emu.SetServerGuest(vm2, &emulator.GuestSpec{QMPSocket: g2.QMPSocket()})
	})
	s.do("attach to pod VM 2 (ACTIVE) + hot-plug", func() error {
		if _, err := att.Attach(ctx, pod2, volID); err != nil {
			return err
		}
		return g2.WaitPath(ctx, byID, false)
	})
	s.do("in-VM check in pod VM 2: data reads back, no format", func() error {
		out, err := g2.Sh(ctx, peerpodkit.GuestCheck(volID, `cat /mnt/vol/data`))
		t.Logf("guest 2:\n%s", out)
		if err == nil && (!strings.Contains(out, "written by pod VM 1") || strings.Contains(out, "formatted")) {
			err = fmt.Errorf("pod VM 2 did not read pod VM 1's data on the kept filesystem")
		}
		return err
	})
	s.do("pod 2 deleted: detach (hot-unplug), VM deleted", func() error {
		if err := att.Detach(ctx, volID, vm2); err != nil {
			return err
		}
		if err := g2.WaitPath(ctx, byID, true); err != nil {
			return err
		}
		emu.DeleteServer(vm2, false)
		for _, a := range emu.Attachments() {
			if a.VolumeID == volID {
				return fmt.Errorf("attachment %s to %s left", a.ID, a.ServerID)
			}
		}
		return nil
	})
}
