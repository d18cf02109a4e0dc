package vmrig

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"
)

// Attached is a disk the rig hot-plugged.
type Attached struct {
	Serial string `json:"serial"`
	// ByID is the guest's /dev/disk/by-id/virtio-<serial[:20]>.
	ByID string `json:"by_id"`
	// GuestDev is the guest's device node (/dev/vdX).
	GuestDev string `json:"guest_dev"`
	// QMPSeconds is the blockdev-add + device_add time, TotalSeconds until
	// the by-id link appeared in the guest.
	QMPSeconds   float64 `json:"qmp_s"`
	TotalSeconds float64 `json:"total_s"`
}

// Attach hot-plugs file as a virtio-blk disk with the given serial (pass
// the whole volume id: the guest sees its first 20 characters, as from
// Nova) and waits for its by-id link in the guest.
func (g *Guest) Attach(ctx context.Context, serial, file string) (Attached, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return Attached{}, err
	}
	var a Attached
	err = g.call(ctx, map[string]any{"op": "attach", "serial": serial, "path": abs, "dev": false, "ro": false, "timeout": secondsLeft(ctx, 60)}, &a)
	return a, err
}

// Detached reports a hot-unplug.
type Detached struct {
	DeviceDeletedSeconds float64 `json:"device_deleted_s"`
	TotalSeconds         float64 `json:"total_s"`
	LinkGone             bool    `json:"link_gone"`
}

// Detach unplugs a disk Attach plugged: device_del, DEVICE_DELETED,
// blockdev-del, then the by-id link gone in the guest.
func (g *Guest) Detach(ctx context.Context, serial string) (Detached, error) {
	var d Detached
	err := g.call(ctx, map[string]any{"op": "detach", "serial": serial, "timeout": secondsLeft(ctx, 60)}, &d)
	return d, err
}

// Resize grows the backing file of a disk Attach plugged to size ("1G",
// "+64M", bytes) and resizes it online (QMP block_resize, as Nova does on a
// Cinder extend); it returns when the guest sees the new size.
func (g *Guest) Resize(ctx context.Context, serial, size string) error {
	return g.call(ctx, map[string]any{"op": "resize", "serial": serial, "size": size, "timeout": secondsLeft(ctx, 30)}, nil)
}

// Forward proxies a host socket to a guest address from now on.
func (g *Guest) Forward(ctx context.Context, f Forward) error {
	return g.call(ctx, map[string]any{"op": "forward", "listen": f.Host, "to": f.Guest}, nil)
}

// QMP runs one command on the rig's own QEMU monitor and returns QEMU's
// reply ({"return": ...} or {"error": ...}) as an error when it failed.
func (g *Guest) QMP(ctx context.Context, command string, args any) (json.RawMessage, error) {
	var r struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := g.call(ctx, map[string]any{"op": "qmp", "cmd": command, "args": args}, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("qmp %s: %s: %s", command, r.Error.Class, r.Error.Desc)
	}
	return r.Return, nil
}

// WaitPath waits within ctx until path exists in the guest (or, with gone,
// until it does not).
func (g *Guest) WaitPath(ctx context.Context, path string, gone bool) error {
	missing := "! -e" // loop while the path is missing
	if gone {
		missing = "-e"
	}
	_, err := g.Sh(ctx, fmt.Sprintf("while [ %s %s ]; do usleep 20000; done", missing, path))
	return err
}

// Share re-syncs dir (default the Start one) into /share (~1.2 s).
func (g *Guest) Share(ctx context.Context, dir string) error {
	args := []string{"share", g.Name}
	if dir != "" {
		args = append(args, dir)
	}
	return g.rig.vm(ctx, nil, args...)
}

func secondsLeft(ctx context.Context, def int) int {
	if dl, ok := ctx.Deadline(); ok {
		return max(1, int(time.Until(dl).Seconds())-5)
	}
	return def
}
