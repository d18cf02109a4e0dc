// Package peerpodkit is what the peer-pod end-to-end tests (emulator with a
// vm-rig guest, the rig's libvirt compute) share: the peer-pod controller
// and attacher over a set of clouds, and a ReadWriteOncePod volume. Test
// code only.
package peerpodkit

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
)

// Driver is the peer-pod controller side.
type Driver struct {
	Clouds   openstack.Clouds
	Cloud    peerpod.CurrentCloud
	Ctrl     *peerpod.Controller
	Attacher *peerpod.Attacher
}

// New builds the Cinder controller in peer-pod mode, its peer-pod wrapper
// and an attacher that finds pod VMs by name.
func New(clouds openstack.Clouds, cluster string) (*Driver, error) {
	co := cinder.DefaultControllerOptions()
	co.Cluster = cluster
	co.PeerPods = true
	cs, err := cinder.NewControllerServer(clouds, co)
	if err != nil {
		return nil, err
	}
	c := peerpod.CurrentCloud{Clouds: clouds}
	return &Driver{Clouds: clouds, Cloud: c, Ctrl: peerpod.NewController(cs, c), Attacher: peerpod.NewAttacher(c, cs, &peerpod.Locator{})}, nil
}

// RWOP is the only capability the peer-pod driver takes.
var RWOP = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
}

// CreateVolume creates a 1 GiB ReadWriteOncePod volume and returns its id.
func (d *Driver) CreateVolume(ctx context.Context, name string) (string, error) {
	resp, err := d.Ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}, VolumeCapabilities: []*csi.VolumeCapability{RWOP}})
	if err != nil {
		return "", err
	}
	return resp.Volume.VolumeId, nil
}

// Attachments returns the volume's status and Cinder attachments.
func (d *Driver) Attachments(ctx context.Context, volID string) (string, []openstack.VolumeAttachment, error) {
	c, err := d.Clouds.Get("")
	if err != nil {
		return "", nil, err
	}
	v, err := c.GetVolume(ctx, volID)
	if err != nil {
		return "", nil, err
	}
	return v.Status, v.Attachments, nil
}

// StartAttach starts an attach in the background (the race with the pod
// VM's creation); the channel gets its result.
func (d *Driver) StartAttach(ctx context.Context, pod peerpod.PodRef, volID string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := d.Attacher.Attach(ctx, pod, volID)
		ch <- err
	}()
	return ch
}

// CleanupTimeout bounds a test's cleanup calls.
const CleanupTimeout = 2 * time.Minute

// GuestCheck is the in-VM side CAA's agent would run (with our upstream
// by-serial lookup): find the disk by serial, format only a blank one,
// mount, run action (a shell snippet using /mnt/vol), unmount. Its output
// says whether the disk was formatted ("fs: formatted blank disk") or kept.
func GuestCheck(volID, action string) string {
	byID := "/dev/disk/by-id/virtio-" + volID[:20]
	return fmt.Sprintf(`set -e
i=0; while [ ! -e %[1]s ]; do i=$((i+1)); [ $i -gt 150 ] && { echo "no %[1]s"; exit 1; }; sleep 0.2; done
dev=$(readlink -f %[1]s)
if blkid "$dev" >/dev/null 2>&1; then echo "fs: $(blkid -o value -s TYPE "$dev") (kept)"; else mkfs.ext4 -q "$dev"; echo "fs: formatted blank disk"; fi
mkdir -p /mnt/vol && mount "$dev" /mnt/vol
%[2]s
sync; umount /mnt/vol
ls -l %[1]s`, byID, action)
}
