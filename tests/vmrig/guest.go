package vmrig

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Forward proxies a host socket to a guest address.
type Forward struct {
	// Host is a host unix socket path or tcp:127.0.0.1:PORT.
	Host string
	// Guest is unix:/path or tcp:127.0.0.1:PORT in the guest.
	Guest string
}

// Options configure Start. Zero values take the rig's defaults.
type Options struct {
	// Share is a host directory copied into a read-only disk mounted at
	// /share in the guest (e.g. BuildPlugin's).
	Share string
	// Forwards are set up once the guest is ready.
	Forwards []Forward
	// NFSForward, when non-zero, makes host 127.0.0.1:NFSForward reachable
	// from the guest as 10.0.2.100:2049 (user networking, restrict=on; the
	// guest is 10.0.2.15). Any TCP service works, not only NFS.
	NFSForward int
	// MemMiB is the guest's memory (default 512; the rootfs is RAM).
	MemMiB int
	// QMP adds a QEMU monitor for the caller alone at Guest.QMPSocket.
	QMP bool
	// BootTimeout bounds the boot (default 120 s; boots take 5-7 s here
	// under TCG, vm-rig README).
	BootTimeout time.Duration
}

// Guest is a running vm-rig guest.
type Guest struct {
	// Name is the rig's name of the guest (unique per Start).
	Name string
	rig  *Rig
	qmp  string
}

// GuestAddress is the guest's address when Options.NFSForward is set, and
// HostAddress the address under which the guest reaches the forwarded host
// port (always port 2049).
const (
	GuestAddress = "10.0.2.15"
	HostAddress  = "10.0.2.100"
)

// Start boots a guest named prefix-XXXX and registers its stop (with the
// state directory removed) on t.Cleanup. A guest that fails to boot fails
// the test with its console's last lines.
func (r *Rig) Start(t testing.TB, prefix string, o Options) *Guest {
	t.Helper()
	g := &Guest{Name: uniqueName(prefix), rig: r}
	boot := o.BootTimeout
	if boot == 0 {
		boot = 120 * time.Second
	}
	args := []string{"start", g.Name, "--timeout", strconv.Itoa(int(boot.Seconds()))}
	if o.Share != "" {
		args = append(args, "--share", o.Share)
	}
	if o.MemMiB != 0 {
		args = append(args, "--mem", strconv.Itoa(o.MemMiB))
	}
	if o.NFSForward != 0 {
		args = append(args, "--nfs-forward", strconv.Itoa(o.NFSForward))
	}
	for _, f := range o.Forwards {
		args = append(args, "--forward", f.Host+"="+f.Guest)
	}
	var env []string
	if o.QMP {
		wrapper, sock := g.qmpWrapper(t)
		env, g.qmp = append(env, "VM_RIG_QEMU="+wrapper), sock
	}
	ctx, cancel := context.WithTimeout(context.Background(), boot+30*time.Second)
	defer cancel()
	t.Cleanup(func() { g.stop(t) })
	recordStarted(g.Name)
	if err := r.vm(ctx, env, args...); err != nil {
		t.Fatalf("starting guest %s: %v\nconsole: %s", g.Name, err, g.ConsoleTail(20))
	}
	return g
}

// recordStarted appends the guest's name to $VM_RIG_STARTED_LOG, if set:
// hack/e2e-vm.sh stops the guests of a run it had to kill.
func recordStarted(name string) {
	p := os.Getenv("VM_RIG_STARTED_LOG")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(name + "\n")
}

// uniqueName keeps names short: the rig's unix socket paths are limited to
// 108 bytes.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// qmpWrapper writes a qemu-system-x86_64 wrapper (the rig runs
// $VM_RIG_QEMU) that adds a second QMP monitor, and returns it and the
// monitor's socket, in the guest's rig directory.
func (g *Guest) qmpWrapper(t testing.TB) (wrapper, sock string) {
	t.Helper()
	sock = filepath.Join(g.Dir(), "emu-qmp.sock")
	wrapper = filepath.Join(t.TempDir(), "qemu-"+g.Name)
	script := fmt.Sprintf("#!/bin/sh\nexec qemu-system-x86_64 \"$@\" -qmp unix:%s,server=on,wait=off\n", sock)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, sock
}

func (g *Guest) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("guest %s console (last lines):\n%s", g.Name, g.ConsoleTail(40))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.rig.vm(ctx, nil, "stop", g.Name, "--rm"); err != nil {
		t.Errorf("stopping guest %s: %v", g.Name, err)
	}
}

// Dir is the guest's rig state directory (console.log, qemu.log, ...).
func (g *Guest) Dir() string { return filepath.Join(g.rig.State, "vms", g.Name) }

// QMPSocket is the caller's own QEMU monitor ("" without Options.QMP).
func (g *Guest) QMPSocket() string { return g.qmp }

// ConsoleTail returns the last n lines of the guest's console.
func (g *Guest) ConsoleTail(n int) string {
	b, err := os.ReadFile(filepath.Join(g.Dir(), "console.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// call sends one request to the guest's rig daemon (vm.py's api.sock:
// one JSON line each way) and decodes its result into out.
func (g *Guest) call(ctx context.Context, req map[string]any, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(g.Dir(), "api.sock"))
	if err != nil {
		return fmt.Errorf("guest %s is not running: %w", g.Name, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return err
	}
	var resp struct {
		OK     bool            `json:"ok"`
		Error  string          `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("guest %s %v: %w", g.Name, req["op"], err)
	}
	if !resp.OK {
		return fmt.Errorf("guest %s %v: %s", g.Name, req["op"], resp.Error)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.Result, out)
}

// ExecResult is a finished guest command.
type ExecResult struct {
	RC             int
	Stdout, Stderr string
}

// Exec runs argv in the guest (no shell) and waits for it within ctx
// (default 5 minutes). A non-zero exit is an error holding the output.
func (g *Guest) Exec(ctx context.Context, argv ...string) (ExecResult, error) {
	timeout := 300
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(1, int(time.Until(dl).Seconds())-1)
	}
	var r struct {
		RC       int    `json:"rc"`
		Out      string `json:"out"`
		Err      string `json:"err"`
		Error    string `json:"error"`
		TimedOut bool   `json:"timed_out"`
	}
	if err := g.call(ctx, map[string]any{"op": "exec", "argv": argv, "timeout": timeout, "env": map[string]string{}}, &r); err != nil {
		return ExecResult{RC: -1}, err
	}
	out, _ := base64.StdEncoding.DecodeString(r.Out)
	errOut, _ := base64.StdEncoding.DecodeString(r.Err)
	res := ExecResult{RC: r.RC, Stdout: string(out), Stderr: string(errOut)}
	switch {
	case r.TimedOut:
		return res, fmt.Errorf("%s: timed out after %ds", strings.Join(argv, " "), timeout)
	case r.Error != "":
		return res, fmt.Errorf("%s: %s", strings.Join(argv, " "), r.Error)
	case r.RC != 0:
		return res, fmt.Errorf("%s: exit %d: %s%s", strings.Join(argv, " "), r.RC, res.Stdout, res.Stderr)
	}
	return res, nil
}

// Sh runs a shell script in the guest and returns its stdout.
func (g *Guest) Sh(ctx context.Context, script string) (string, error) {
	r, err := g.Exec(ctx, "sh", "-c", script)
	return r.Stdout, err
}

// Spawn starts argv in the background in the guest (its own session),
// stdout and stderr to the guest file log, and returns its pid.
func (g *Guest) Spawn(ctx context.Context, log string, argv ...string) (int, error) {
	var r struct {
		RC    int    `json:"rc"`
		PID   int    `json:"pid"`
		Error string `json:"error"`
	}
	if err := g.call(ctx, map[string]any{"op": "spawn", "argv": argv, "log": log, "env": map[string]string{}}, &r); err != nil {
		return 0, err
	}
	if r.RC != 0 {
		return 0, fmt.Errorf("spawn %s: %s", argv[0], r.Error)
	}
	return r.PID, nil
}
