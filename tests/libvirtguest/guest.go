// Package libvirtguest reaches the vm-rig guest agent inside a QEMU guest
// that libvirt runs for Nova (the rig's libvirt compute, hack/rig-libvirt.sh):
// exec and spawn in the guest, block-device events with their arrival
// time, host-to-guest socket forwards and a read-only /share disk. It is
// test-only.
//
// tests/vmrig cannot do this: it talks to vm.py's per-guest daemon, which
// starts and owns its QEMU. Here libvirt owns QEMU, so Connect hot-plugs
// the agent's two virtio-serial ports (vmrig.ctl, vmrig.fwd) into the
// running domain as libvirt channels whose host ends are unix sockets, and
// speaks the agent's protocol on them itself (vm-rig's agent/main.go: JSON
// lines on vmrig.ctl, frames on vmrig.fwd). The guest's busybox init
// respawns the agent until the ports exist.
package libvirtguest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// BlockEvent is a block-device uevent from the guest (a virtio disk
// appearing, going or changing size), stamped with its arrival on the host.
type BlockEvent struct {
	Action string  `json:"action"` // add, remove, change
	Dev    string  `json:"dev"`    // vdb, ...
	Serial string  `json:"serial"` // the first 20 characters of the volume id
	Size   int64   `json:"size"`   // bytes
	Uptime float64 `json:"uptime"` // guest uptime when the agent saw it
	At     time.Time
}

// Guest is a connected libvirt domain.
type Guest struct {
	Domain string // libvirt domain name (instance-0000000N)
	dir    string

	ctl     net.Conn
	wmu     sync.Mutex // one writer per port
	mu      sync.Mutex
	nextID  int
	pending map[string]chan json.RawMessage
	events  chan BlockEvent
	mux     *mux
	closed  chan struct{}
}

// Virsh runs virsh against the system libvirtd.
func Virsh(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", "qemu:///system", "-q"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Connect finds the domain of Nova server serverID (libvirt's domain uuid
// is the server id), adds the agent's ports with their host sockets in dir,
// and returns when the agent answers. Close releases the sockets; the
// channels go with the domain.
func Connect(ctx context.Context, serverID, dir string) (*Guest, error) {
	name, err := Virsh(ctx, "domname", serverID)
	if err != nil {
		return nil, err
	}
	g := &Guest{Domain: name, dir: dir, pending: map[string]chan json.RawMessage{},
		events: make(chan BlockEvent, 64), closed: make(chan struct{})}
	socks := map[string]string{}
	for _, port := range []string{"ctl", "fwd"} {
		sock := filepath.Join(dir, port+".sock")
		socks[port] = sock
		xml := fmt.Sprintf("<channel type='unix'><source mode='bind' path='%s'/><target type='virtio' name='vmrig.%s'/></channel>", sock, port)
		file := filepath.Join(dir, port+".xml")
		if err := os.WriteFile(file, []byte(xml), 0o600); err != nil {
			return nil, err
		}
		if _, err := Virsh(ctx, "attach-device", name, file, "--live"); err != nil {
			return nil, err
		}
	}
	var d net.Dialer
	if g.ctl, err = d.DialContext(ctx, "unix", socks["ctl"]); err != nil {
		return nil, err
	}
	fwd, err := d.DialContext(ctx, "unix", socks["fwd"])
	if err != nil {
		g.ctl.Close()
		return nil, err
	}
	g.mux = newMux(fwd)
	go g.readCtl()
	if err := g.waitAgent(ctx); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// waitAgent pings until the agent answers: it finds its ports only when
// busybox init next respawns it (it gives up after 10 s without them).
func (g *Guest) waitAgent(ctx context.Context) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := g.call(pctx, map[string]any{"op": "ping"})
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("guest agent in %s never answered: %w", g.Domain, err)
		}
	}
}

// Close drops the connections (the agent waits for the next host).
func (g *Guest) Close() {
	select {
	case <-g.closed:
		return
	default:
		close(g.closed)
	}
	g.ctl.Close()
	g.mux.close()
}

func (g *Guest) readCtl() {
	r := bufio.NewReaderSize(g.ctl, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var head struct {
			ID    string `json:"id"`
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue
		}
		if head.Event == "block" {
			var ev BlockEvent
			if json.Unmarshal(line, &ev) == nil {
				ev.At = time.Now()
				select {
				case g.events <- ev:
				default: // nobody reads: drop rather than stall the port
				}
			}
			continue
		}
		g.mu.Lock()
		ch := g.pending[head.ID]
		delete(g.pending, head.ID)
		g.mu.Unlock()
		if ch != nil {
			ch <- json.RawMessage(line)
		}
	}
}

// call sends one request on vmrig.ctl and waits for its answer within ctx.
func (g *Guest) call(ctx context.Context, req map[string]any) (json.RawMessage, error) {
	g.mu.Lock()
	g.nextID++
	id := strconv.Itoa(g.nextID)
	ch := make(chan json.RawMessage, 1)
	g.pending[id] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.pending, id)
		g.mu.Unlock()
	}()
	req["id"] = id
	b, _ := json.Marshal(req)
	g.wmu.Lock()
	_, err := g.ctl.Write(append(b, '\n'))
	g.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("guest %s %v: %w", g.Domain, req["op"], ctx.Err())
	case <-g.closed:
		return nil, errors.New("guest connection closed")
	}
}

// Events delivers the guest's block events from Connect on (buffered; the
// oldest are kept when nobody reads).
func (g *Guest) Events() <-chan BlockEvent { return g.events }

// Exec runs argv in the guest (no shell) within ctx (default 5 minutes).
// A non-zero exit is an error holding the output.
func (g *Guest) Exec(ctx context.Context, argv ...string) (vmrig.ExecResult, error) {
	timeout := 300.0
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(1, time.Until(dl).Seconds()-1)
	}
	raw, err := g.call(ctx, map[string]any{"op": "exec", "argv": argv, "timeout": timeout})
	if err != nil {
		return vmrig.ExecResult{RC: -1}, err
	}
	var r struct {
		RC       int    `json:"rc"`
		Out      []byte `json:"out"` // base64 in the protocol, as encoding/json decodes []byte
		Err      []byte `json:"err"`
		Error    string `json:"error"`
		TimedOut bool   `json:"timed_out"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return vmrig.ExecResult{RC: -1}, err
	}
	res := vmrig.ExecResult{RC: r.RC, Stdout: string(r.Out), Stderr: string(r.Err)}
	cmd := strings.Join(argv, " ")
	switch {
	case r.TimedOut:
		return res, fmt.Errorf("%s: timed out after %.0fs", cmd, timeout)
	case r.Error != "":
		return res, fmt.Errorf("%s: %s", cmd, r.Error)
	case r.RC != 0:
		return res, fmt.Errorf("%s: exit %d: %s%s", cmd, r.RC, res.Stdout, res.Stderr)
	}
	return res, nil
}

// Sh runs a shell script in the guest and returns its stdout.
func (g *Guest) Sh(ctx context.Context, script string) (string, error) {
	r, err := g.Exec(ctx, "sh", "-c", script)
	return r.Stdout, err
}

// Spawn starts argv in the background in the guest (its own session),
// output appended to the guest file log, and returns its pid.
func (g *Guest) Spawn(ctx context.Context, log string, argv ...string) (int, error) {
	raw, err := g.call(ctx, map[string]any{"op": "spawn", "argv": argv, "log": log})
	if err != nil {
		return 0, err
	}
	var r struct {
		RC    int    `json:"rc"`
		PID   int    `json:"pid"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return 0, err
	}
	if r.RC != 0 {
		return 0, fmt.Errorf("spawn %s: %s", argv[0], r.Error)
	}
	return r.PID, nil
}

// WaitPath waits within ctx until path exists in the guest (or, with
// gone, until it does not) and returns what it resolves to.
func (g *Guest) WaitPath(ctx context.Context, path string, gone bool) (string, error) {
	timeout := 60.0
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(0.1, time.Until(dl).Seconds())
	}
	raw, err := g.call(ctx, map[string]any{"op": "waitpath", "path": path, "gone": gone, "timeout": timeout})
	if err != nil {
		return "", err
	}
	var r struct {
		RC     int    `json:"rc"`
		Target string `json:"target"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", err
	}
	if r.RC != 0 {
		return "", fmt.Errorf("waiting for %s (gone=%v) in %s: %s", path, gone, g.Domain, r.Error)
	}
	return r.Target, nil
}

// Share makes dir the guest's read-only /share: an ext4 image of it
// (mkfs.ext4 -d) hot-plugged by libvirt as virtio disk vdz with serial
// vmrig-share, as vm-rig's --share does at boot. vdz keeps clear of the
// names Nova gives volumes (vdb, vdc, ...).
func (g *Guest) Share(ctx context.Context, dir string) error {
	img := filepath.Join(g.dir, "share.img")
	var size int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			size += fi.Size()
		}
		return nil
	})
	size = size*5/4 + 16<<20 // ext4 metadata and journal
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-d", dir, img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s: %w: %s", dir, err, out)
	}
	if _, err := Virsh(ctx, "attach-disk", g.Domain, img, "vdz", "--targetbus", "virtio", "--mode", "readonly",
		"--serial", "vmrig-share", "--live"); err != nil {
		return err
	}
	if _, err := g.WaitPath(ctx, "/dev/disk/by-id/virtio-vmrig-share", false); err != nil {
		return err
	}
	_, err := g.Sh(ctx, "mkdir -p /share && mount -t ext4 -o ro,noload /dev/disk/by-id/virtio-vmrig-share /share")
	return err
}
