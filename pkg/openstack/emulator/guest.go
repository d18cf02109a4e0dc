package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/qmp"
)

// VM hot-plug mode: a server declared a QEMU guest (GuestSpec) gets its
// attachments the way Nova's libvirt driver plugs them: the volume's
// backing file as a raw blockdev and a virtio-blk-pci device with serial =
// the volume id (the guest sees its first 20 characters) at the PCI slot
// the metadata service lists; a detach is device_del, DEVICE_DELETED from
// the guest, then blockdev-del; an extend is block_resize. The QMP work
// runs with e.mu released; every state change re-checks the attachment
// afterwards.

// GuestSpec declares a server a QEMU guest reachable through a QMP monitor
// socket of its own (tests/vmrig's Options.QMP gives one for a vm-rig
// guest).
type GuestSpec struct {
	QMPSocket string `json:"qmp_socket"`
	// NoSerial plugs disks without a serial, as hypervisors that expose
	// none do: the node then finds a disk only through the metadata
	// service's devices list (bus address).
	NoSerial bool `json:"no_serial,omitempty"`
}

// Time limits of the QMP work. A plug or block_resize takes under 20 ms
// on the vm-rig (its README); the detach wait is Nova's libvirt
// device_detach_timeout (20 s), after which Nova gives up and the
// attachment stays attached.
const (
	guestCommandTimeout = 10 * time.Second
	guestDetachTimeout  = 20 * time.Second
	blockdevDelRetry    = 20 * time.Millisecond
)

// SetServerGuest makes a server a QEMU guest (nil: an ordinary server
// again). It changes nothing already plugged.
func (e *Emulator) SetServerGuest(serverID string, g *GuestSpec) error {
	if g != nil && g.QMPSocket == "" {
		return errors.New("guest: qmp_socket is required")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st.Servers[serverID]
	if s == nil {
		return fmt.Errorf("server %s not found", serverID)
	}
	if g != nil {
		c := *g
		g = &c
	}
	s.Guest = g
	e.markDirty()
	return nil
}

// guestIDs are the QOM device id and block node name of a volume; QEMU
// limits node names to 31 characters.
func guestIDs(volID string) (device, node string) {
	short := serialOf(volID)
	return "emu-d-" + short, "emu-n-" + short
}

// guestLock serialises the QMP work on one monitor: QEMU serves one client
// per monitor socket at a time.
func (e *Emulator) guestLock(socket string) *sync.Mutex {
	m, _ := e.guestLocks.LoadOrStore(socket, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// withQMP runs fn on a fresh monitor connection within timeout.
func (e *Emulator) withQMP(g GuestSpec, timeout time.Duration, fn func(ctx context.Context, q *qmp.Conn) error) error {
	mu := e.guestLock(g.QMPSocket)
	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	q, err := qmp.Dial(ctx, g.QMPSocket)
	if err != nil {
		return err
	}
	defer q.Close()
	return fn(ctx, q)
}

// detachWait is guestDetachTimeout unless a test shortened it.
func (e *Emulator) detachWait() time.Duration {
	if e.guestDetachTimeout > 0 {
		return e.guestDetachTimeout
	}
	return guestDetachTimeout
}

// unlocked runs fn with e.mu released; callers hold e.mu.
func (e *Emulator) unlocked(fn func()) {
	e.mu.Unlock()
	defer e.mu.Lock()
	fn()
}

func duplicate(err error) bool {
	var qe *qmp.Error
	return errors.As(err, &qe) && (strings.Contains(qe.Desc, "Duplicate") || strings.Contains(qe.Desc, "already"))
}

// plugGuest adds the blockdev and the virtio-blk device. Both steps accept
// "already there", so a replug after an emulator restart converges.
func plugGuest(g GuestSpec, volID, file string, slot int) func(ctx context.Context, q *qmp.Conn) error {
	return func(ctx context.Context, q *qmp.Conn) error {
		dev, node := guestIDs(volID)
		_, err := q.Execute(ctx, "blockdev-add", map[string]any{
			"node-name": node, "driver": "raw",
			"file": map[string]any{"driver": "file", "filename": file, "aio": "threads"},
		})
		if err != nil && !duplicate(err) {
			return err
		}
		args := map[string]any{"driver": "virtio-blk-pci", "id": dev, "drive": node, "addr": fmt.Sprintf("0x%x", slot)}
		if !g.NoSerial {
			args["serial"] = volID
		}
		if _, err := q.Execute(ctx, "device_add", args); err != nil && !duplicate(err) {
			_, _ = q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
			return err
		}
		return nil
	}
}

// unplugGuest asks the guest to release the device, waits for its
// DEVICE_DELETED (QEMU also sends one for the .../virtio-backend path,
// without "device") and then deletes the block node, which QEMU refuses
// while the device still holds it.
func unplugGuest(volID string) func(ctx context.Context, q *qmp.Conn) error {
	return func(ctx context.Context, q *qmp.Conn) error {
		dev, node := guestIDs(volID)
		if _, err := q.Execute(ctx, "device_del", map[string]any{"id": dev}); err != nil {
			var qe *qmp.Error
			if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
				return err
			}
		} else if _, err := q.WaitEvent(ctx, "DEVICE_DELETED", func(d json.RawMessage) bool {
			var data struct{ Device string }
			return json.Unmarshal(d, &data) == nil && data.Device == dev
		}); err != nil {
			return fmt.Errorf("the guest did not release %s: %w", dev, err)
		}
		for {
			_, err := q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
			var qe *qmp.Error
			if err == nil || (errors.As(err, &qe) && strings.Contains(qe.Desc, "not found")) {
				return nil
			}
			if !errors.As(err, &qe) {
				return err
			}
			t := time.NewTimer(blockdevDelRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("blockdev-del %s: %w", node, err)
			case <-t.C:
			}
		}
	}
}

// plugIntoGuestLocked plugs an attaching volume into its server's guest.
// It reports whether the attachment is still there to complete: a failed
// plug rolls it back as Nova does (the volume returns to available).
func (e *Emulator) plugIntoGuestLocked(a *attachment, v *volume, g GuestSpec) bool {
	id, volID, file, slot := a.ID, v.ID, v.DataFile, a.Slot
	err := errors.New("the volume has no data file to plug")
	if file != "" {
		e.unlocked(func() { err = e.withQMP(g, guestCommandTimeout, plugGuest(g, volID, file, slot)) })
	}
	if e.st.Attachments[id] != a || a.Status != "attaching" {
		if err == nil { // detached while plugging
			e.unlocked(func() { _ = e.withQMP(g, guestDetachTimeout, unplugGuest(volID)) })
		}
		return false
	}
	if err != nil {
		klog.ErrorS(err, "emulator: hot-plug into the guest failed; attachment rolled back", "volumeID", volID, "serverID", a.ServerID)
		delete(e.st.Attachments, id)
		e.recomputeVolumeStatusLocked(v)
		e.markDirty()
		return false
	}
	a.GuestDevice, _ = guestIDs(volID)
	klog.V(2).InfoS("emulator: hot-plugged volume into the guest", "volumeID", volID, "serverID", a.ServerID, "device", a.GuestDevice, "slot", slot)
	return true
}

// unplugFromGuestLocked unplugs a detaching volume. It reports whether the
// detach may finish; when the guest keeps the disk, the attachment stays
// attached, as Nova leaves it after its detach timeout.
func (e *Emulator) unplugFromGuestLocked(a *attachment) bool {
	s := e.st.Servers[a.ServerID]
	if s == nil || s.Guest == nil {
		a.GuestDevice = ""
		return true
	}
	g, id, volID := *s.Guest, a.ID, a.VolumeID
	var err error
	e.unlocked(func() { err = e.withQMP(g, e.detachWait(), unplugGuest(volID)) })
	if e.st.Attachments[id] != a {
		return false
	}
	if err != nil {
		klog.ErrorS(err, "emulator: detach from the guest failed; the volume stays attached", "volumeID", volID, "serverID", a.ServerID)
		a.Status = "attached"
		if v := e.st.Volumes[volID]; v != nil {
			e.recomputeVolumeStatusLocked(v)
		}
		e.markDirty()
		return false
	}
	a.GuestDevice = ""
	return true
}

// resizeInGuestLocked tells the guest its disk grew (block_resize), as
// Nova does when Cinder reports an extend of an attached volume.
func (e *Emulator) resizeInGuestLocked(a *attachment, size int64) {
	s := e.st.Servers[a.ServerID]
	if s == nil || s.Guest == nil {
		return
	}
	g, volID := *s.Guest, a.VolumeID
	_, node := guestIDs(volID)
	var err error
	e.unlocked(func() {
		err = e.withQMP(g, guestCommandTimeout, func(ctx context.Context, q *qmp.Conn) error {
			_, err := q.Execute(ctx, "block_resize", map[string]any{"node-name": node, "size": size})
			return err
		})
	})
	if err != nil {
		klog.ErrorS(err, "emulator: block_resize in the guest failed", "volumeID", volID, "serverID", a.ServerID)
	}
}

// unplugGuestsLocked unplugs every guest disk (Close): the guests may
// outlive the emulator and its data files.
func (e *Emulator) unplugGuestsLocked() {
	var plugged []*attachment // e.mu is released while unplugging: no map iteration then
	for _, a := range e.st.Attachments {
		if a.GuestDevice != "" {
			plugged = append(plugged, a)
		}
	}
	for _, a := range plugged {
		e.unplugFromGuestLocked(a)
	}
}

// replugGuestsLocked plugs attachments restored from disk into their
// guests (plugGuest converges when the guest still has them).
func (e *Emulator) replugGuestsLocked() {
	var todo []*attachment // e.mu is released while plugging: no map iteration then
	for _, a := range e.st.Attachments {
		todo = append(todo, a)
	}
	for _, a := range todo {
		s, v := e.st.Servers[a.ServerID], e.st.Volumes[a.VolumeID]
		if e.st.Attachments[a.ID] != a || a.Status != "attached" || s == nil || s.Guest == nil || v == nil {
			continue
		}
		g, volID, file, slot := *s.Guest, v.ID, v.DataFile, a.Slot
		var err error
		e.unlocked(func() { err = e.withQMP(g, guestCommandTimeout, plugGuest(g, volID, file, slot)) })
		if err != nil {
			klog.ErrorS(err, "emulator: replug into the guest failed", "volumeID", volID)
			continue
		}
		a.GuestDevice, _ = guestIDs(volID)
	}
}

// resizeGuestsLocked block_resizes the volume in every guest it is plugged
// into.
func (e *Emulator) resizeGuestsLocked(volID string, size int64) {
	var plugged []*attachment
	for _, a := range e.st.attachmentsOfVolume(volID) {
		if a.GuestDevice != "" {
			plugged = append(plugged, a)
		}
	}
	for _, a := range plugged {
		e.resizeInGuestLocked(a, size)
	}
}

// adminServerGuest: PUT /admin/servers/{id}/guest {"qmp_socket": "...",
// "no_serial": false} declares the server a QEMU guest; DELETE makes it an
// ordinary server again.
func (e *Emulator) adminServerGuest(q *req) {
	var g *GuestSpec
	if q.r.Method == http.MethodPut {
		g = &GuestSpec{}
		if !decodeBody(q, g) {
			return
		}
	}
	if err := e.SetServerGuest(q.p("server_id"), g); err != nil {
		status := http.StatusBadRequest
		if strings.Contains(err.Error(), "not found") {
			status = http.StatusNotFound
		}
		writeError(q.w, status, err.Error())
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
