// Package peerpod runs the peer-pod attach against the real openstack-rig
// with its libvirt compute (hack/rig-libvirt.sh): the pod VM is a real Nova
// instance booting under QEMU, and Nova plus libvirt attach the Cinder RBD
// volume to it.
package peerpod

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/libvirtguest"
	"github.com/cinder-csi/cinder-csi/tests/peerpodkit"
)

// timeBox: a libvirt instance boots in 30-90 s under TCG on this host
// (hack/rig-libvirt.sh); attach, delete and detach take seconds.
const timeBox = 8 * time.Minute

func TestPeerPodOnTheLibvirtCompute(t *testing.T) {
	env := rig.Require(t)
	if os.Getenv("E2E_LIBVIRT") != "1" {
		t.Skip("the rig's libvirt compute is not up (hack/rig-libvirt.sh up; E2E_LIBVIRT=1)")
	}
	image, flavor := os.Getenv("E2E_LIBVIRT_IMAGE"), os.Getenv("E2E_LIBVIRT_FLAVOR")
	if image == "" || flavor == "" {
		t.Skip("E2E_LIBVIRT_IMAGE and E2E_LIBVIRT_FLAVOR are not set (hack/e2e-openstack.sh sets them)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	var lines []string
	step := func(name string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		lines = append(lines, fmt.Sprintf("%-56s %7.2fs", name, time.Since(start).Seconds()))
		if err != nil {
			t.Logf("steps:\n%s", strings.Join(lines, "\n"))
			t.Fatalf("%s: %v", name, err)
		}
	}
	defer func() { t.Logf("peer-pod steps on the libvirt compute:\n%s", strings.Join(lines, "\n")) }()

	c, err := env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "cloud.conf")
	base, err := os.ReadFile(env.CloudConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, base, 0o600); err != nil {
		t.Fatal(err)
	}
	clouds, err := openstack.NewClouds(ctx, []string{conf}, openstack.Options{UserAgent: []string{"cinder-csi-e2e-peerpod"}})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := peerpodkit.New(clouds, "e2e-peerpod")
	if err != nil {
		t.Fatal(err)
	}

	var volID string
	step("CreateVolume 1 GiB RWOP (Cinder RBD)", func() (err error) {
		volID, err = drv.CreateVolume(ctx, "e2e-peerpod-"+rig.NewUUID()[:8])
		return err
	})
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), peerpodkit.CleanupTimeout)
		defer ccancel()
		if _, err := drv.Ctrl.DeleteVolume(cctx, &csi.DeleteVolumeRequest{VolumeId: volID}); err != nil {
			t.Errorf("deleting volume %s: %v", volID, err)
		}
	})

	pod := peerpod.PodRef{Namespace: "e2e", Name: "peerpod-" + rig.NewUUID()[:6], UID: rig.NewUUID()}
	var attached <-chan error
	step("attach started before the pod VM exists", func() error {
		attached = drv.StartAttach(ctx, pod, volID)
		return nil
	})
	var serverID string
	step("POST /servers podvm-<pod>-<sandbox> on the libvirt compute", func() error {
		name := peerpod.InstanceName(pod.Name, rig.NewUUID())
		r, err := c.Do(ctx, rig.Compute, "POST", "/servers", "2.79", map[string]any{"server": map[string]any{
			"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})
		if err != nil || r.Status != 202 {
			return fmt.Errorf("creating %s: %v %v", name, err, r)
		}
		serverID, _ = r.JSON()["server"].(map[string]any)["id"].(string)
		return nil
	})
	t.Cleanup(func() { deleteServer(t, c, serverID) })
	step("VM boots (BUILD -> ACTIVE), then Nova/libvirt attach -> in-use", func() error { return <-attached })
	step("the volume is attached to the pod VM only", func() error {
		status, atts, err := drv.Attachments(ctx, volID)
		if err != nil {
			return err
		}
		if len(atts) != 1 || atts[0].ServerID != serverID || status != "in-use" {
			return fmt.Errorf("volume %s: status %s, attachments %+v", volID, status, atts)
		}
		t.Logf("attached as %s on pod VM %s", atts[0].Device, serverID)
		return nil
	})
	step("in the pod VM: by-id lookup, format blank, mount, write", func() error {
		// unix socket paths are limited to 108 bytes: t.TempDir() is too deep.
		dir, err := os.MkdirTemp("", "peerpod-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		g, err := libvirtguest.Connect(ctx, serverID, dir)
		if err != nil {
			return err
		}
		defer g.Close()
		out, err := g.Sh(ctx, peerpodkit.GuestCheck(volID, `echo "written in the libvirt pod VM" > /mnt/vol/data; cat /mnt/vol/data`))
		t.Logf("pod VM:\n%s", out)
		if err == nil && !strings.Contains(out, "formatted blank disk") {
			err = fmt.Errorf("the blank Cinder volume was not formatted in the pod VM")
		}
		return err
	})
	step("pod VM deleted before any detach (Nova delete)", func() error {
		deleteServer(t, c, serverID)
		return nil
	})
	step("Detach: 0 attachments left, volume available", func() error {
		if err := drv.Attacher.Detach(ctx, volID, serverID); err != nil {
			return err
		}
		status, atts, err := drv.Attachments(ctx, volID)
		if err != nil {
			return err
		}
		if len(atts) != 0 || status != "available" {
			return fmt.Errorf("volume %s: status %s, attachments %+v", volID, status, atts)
		}
		return nil
	})
}

// deleteServer deletes the server and waits until Nova has; a server
// already gone is fine.
func deleteServer(t *testing.T, c *rig.Client, id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := c.Do(ctx, rig.Compute, "DELETE", "/servers/"+id, "2.79", nil)
	if err != nil || (r.Status != 204 && r.Status != 404) {
		t.Errorf("deleting server %s: %v %v", id, err, r)
		return
	}
	for ctx.Err() == nil {
		r, err := c.Do(ctx, rig.Compute, "GET", "/servers/"+id, "2.79", nil)
		if err == nil && r.Status == 404 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	t.Errorf("server %s still there after delete", id)
}
