// Package libvirtnode runs the Cinder node service inside a real Nova
// instance: a server on the rig's libvirt compute (hack/rig-libvirt.sh,
// virt_type=qemu under TCG) booted from the vm-rig kernel and initramfs,
// its Cinder RBD volumes attached by Nova and libvirt themselves (qemu's
// rbd driver) and seen by the guest kernel as hot-plugged virtio-blk
// disks whose serial is the volume id's first 20 characters. The plugin
// (node service only) reads its instance id from Nova's config drive; the
// controller runs on the host against the same cloud.
//
// Gated by rig.EnvGate and E2E_LIBVIRT=1, which hack/e2e-openstack.sh sets
// when rig-libvirt.sh brought the compute up (else the reason is in
// E2E_LIBVIRT_SKIP).
package libvirtnode

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/libvirtguest"
)

// env is the rig plus the libvirt compute's image and flavor ids.
type env struct {
	*rig.Env
	Image, Flavor string
}

func requireLibvirt(t *testing.T) *env {
	t.Helper()
	e := rig.Require(t)
	if os.Getenv("E2E_LIBVIRT") != "1" {
		reason := os.Getenv("E2E_LIBVIRT_SKIP")
		if reason == "" {
			reason = "the rig's libvirt compute is not up (hack/rig-libvirt.sh up; E2E_LIBVIRT=1)"
		}
		t.Skip(reason)
	}
	le := &env{Env: e, Image: os.Getenv("E2E_LIBVIRT_IMAGE"), Flavor: os.Getenv("E2E_LIBVIRT_FLAVOR")}
	if le.Image == "" || le.Flavor == "" {
		t.Fatal("E2E_LIBVIRT_IMAGE and E2E_LIBVIRT_FLAVOR must be set (hack/e2e-openstack.sh)")
	}
	return le
}

// server is the member's Nova instance on the libvirt compute.
type server struct {
	ID   string
	Boot time.Duration // POST /servers -> ACTIVE
}

// createServer boots the member's server (networks none: there is no
// Neutron) and deletes it on cleanup, waiting until Nova has.
func createServer(ctx context.Context, t *testing.T, c *rig.Client, e *env) *server {
	t.Helper()
	name := "e2e-libvirt-" + rig.NewUUID()[:8]
	start := time.Now()
	r, err := c.Do(ctx, rig.Compute, "POST", "/servers", "2.79", map[string]any{"server": map[string]any{
		"name": name, "imageRef": e.Image, "flavorRef": e.Flavor, "networks": "none"}})
	if err != nil || r.Status != 202 {
		t.Fatalf("creating server %s: %v %v", name, err, r)
	}
	id, _ := r.JSON()["server"].(map[string]any)["id"].(string)
	t.Cleanup(func() { deleteServer(t, c, id) })
	for {
		r, err := c.Do(ctx, rig.Compute, "GET", "/servers/"+id, "2.79", nil)
		if err != nil {
			t.Fatalf("server %s: %v", name, err)
		}
		s, _ := r.JSON()["server"].(map[string]any)
		switch s["status"] {
		case "ACTIVE":
			return &server{ID: id, Boot: time.Since(start)}
		case "ERROR":
			t.Fatalf("server %s went to ERROR: %v", name, s["fault"])
		}
		if !sleep(ctx, time.Second) {
			t.Fatalf("server %s not ACTIVE: %v", name, ctx.Err())
		}
	}
}

func deleteServer(t *testing.T, c *rig.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if r, err := c.Do(ctx, rig.Compute, "DELETE", "/servers/"+id, "2.79", nil); err != nil || r.Status != 204 {
		t.Errorf("deleting server %s: %v %v", id, err, r)
		return
	}
	for {
		r, err := c.Do(ctx, rig.Compute, "GET", "/servers/"+id, "2.79", nil)
		if err == nil && r.Status == 404 {
			return
		}
		if !sleep(ctx, time.Second) {
			t.Errorf("server %s still there after delete: %v", id, ctx.Err())
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// waitBlock waits for the guest's block event action on the disk whose
// serial is the volume id's first 20 characters (add, change) or, for
// remove (sysfs has no serial left by then), on the disk named dev.
func waitBlock(ctx context.Context, g *libvirtguest.Guest, action, volumeID, dev string) (libvirtguest.BlockEvent, error) {
	for {
		select {
		case ev := <-g.Events():
			if ev.Action == action && (ev.Serial == volumeID[:20] || action == "remove" && ev.Dev == dev) {
				return ev, nil
			}
		case <-ctx.Done():
			return libvirtguest.BlockEvent{}, fmt.Errorf("no %s event for volume %s in the guest: %w", action, volumeID, ctx.Err())
		}
	}
}

// drainEvents forgets the events that came before a step.
func drainEvents(g *libvirtguest.Guest) {
	for {
		select {
		case <-g.Events():
		default:
			return
		}
	}
}
