package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// nodeID is the Nova server the emulator presents as this host.
const nodeID = "d3e0c1a2-5b4f-4e8d-9c7b-6a5f4e3d2c1b"

// startupTimeout bounds the wait for each process to come up; both are
// ready in well under a second on a laptop, the margin is for a busy CI.
const startupTimeout = 30 * time.Second

type demo struct {
	opts options
	out  io.Writer
	root bool

	work     string
	emuURL   string
	emu      *exec.Cmd
	plugin   *exec.Cmd
	emuDone  chan error
	plugDone chan error
	logs     *logs
	conn     *grpc.ClientConn
	ids      csi.IdentityClient
	cs       csi.ControllerClient
	ns       csi.NodeClient

	steps []*step
	state lifecycleState

	// The Manila run (--driver manila).
	total      int
	pluginName string
	manila     manilaState
}

// logs keeps the processes' output in memory, so that nothing is written
// to disk and a failure can still show it after the temp dir is gone.
type logs struct{ emulator, plugin syncBuffer }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimRight(s.b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (l *logs) dump(w io.Writer) {
	fmt.Fprintf(w, "\n--- openstack-emulator log (last 40 lines)\n%s\n", l.emulator.tail(40))
	fmt.Fprintf(w, "--- CSI plugin log (last 40 lines)\n%s\n", l.plugin.tail(40))
}

func (d *demo) start(ctx context.Context) error {
	for _, b := range []string{"openstack-emulator", "cinder-csi-plugin"} {
		if _, err := os.Stat(filepath.Join(d.opts.binDir, b)); err != nil {
			return fmt.Errorf("%s not found in %s (run `make build`, or pass --bin-dir): %w", b, d.opts.binDir, err)
		}
	}
	if d.root {
		if err := checkNodeTools(lookPath); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "csi-demo-")
	if err != nil {
		return err
	}
	d.work = work
	d.logs = &logs{}
	if err := d.startEmulator(ctx); err != nil {
		return err
	}
	socket := filepath.Join(work, "csi.sock")
	if err := d.startPlugin(ctx, socket); err != nil {
		return err
	}
	d.conn, err = grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.ids, d.cs, d.ns = csi.NewIdentityClient(d.conn), csi.NewControllerClient(d.conn), csi.NewNodeClient(d.conn)

	info, err := d.ids.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return fmt.Errorf("GetPluginInfo: %w", err)
	}
	fmt.Fprintf(d.out, "csi-demo: %s %s on unix://%s\n", info.GetName(), info.GetVendorVersion(), socket)
	fmt.Fprintf(d.out, "          OpenStack emulator at %s, %q latency profile\n", d.emuURL, d.opts.profile)
	if !d.root {
		fmt.Fprintf(d.out, "          not root (uid %d): the node steps (format, mount, loop devices) will be skipped\n", os.Geteuid())
	}
	fmt.Fprintln(d.out)
	return nil
}

// startEmulator starts the emulator with its files in d.work, waits for
// its URL and adds the volume type the modify step retypes to.
func (d *demo) startEmulator(ctx context.Context) error {
	work := d.work
	emuArgs := []string{"--profile", d.opts.profile,
		"--servers", "id=" + nodeID + ",name=demo-node,az=nova,local",
		"--url-file", filepath.Join(work, "url"), "--cloud-conf", filepath.Join(work, "cloud.conf"),
		"--data-dir", filepath.Join(work, "data")}
	if d.root {
		// Hot-plug: attachments to the local server appear as loop
		// devices with the by-id links a guest's udev would make.
		emuArgs = append(emuArgs, "--dev-root", filepath.Join(work, "dev"), "--sys-root", filepath.Join(work, "sys"))
	}
	d.emu = exec.Command(filepath.Join(d.opts.binDir, "openstack-emulator"), emuArgs...)
	d.emu.Stdout, d.emu.Stderr = &d.logs.emulator, &d.logs.emulator
	var err error
	if d.emuDone, err = startProcess(d.emu); err != nil {
		return fmt.Errorf("starting openstack-emulator: %w", err)
	}
	urlBytes, err := waitFor(ctx, d.emuDone, "openstack-emulator", func() ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(work, "url"))
		return b, err == nil && len(b) > 0
	})
	if err != nil {
		return err
	}
	d.emuURL = strings.TrimSpace(string(urlBytes))
	return addVolumeType(ctx, d.emuURL, modifiedType, map[string]string{"volume_backend_name": "ssd"})
}

// startPlugin starts the Cinder plugin on the emulator's cloud.conf,
// serving on socket, and waits for the socket.
func (d *demo) startPlugin(ctx context.Context, socket string) error {
	work := d.work
	plugArgs := []string{"--endpoint", "unix://" + socket, "--cloud-config", filepath.Join(work, "cloud.conf"),
		"--cluster", "demo", "--metadata-url", d.emuURL + "/openstack/latest/meta_data.json"}
	if d.root {
		plugArgs = append(plugArgs, "--dev-root", filepath.Join(work, "dev"), "--sys-root", filepath.Join(work, "sys"))
	}
	// Staging and target paths are under <work>/kubelet (steps.go), the
	// only tree the node service accepts them in.
	kubeletRoot := filepath.Join(work, "kubelet")
	if err := os.MkdirAll(kubeletRoot, 0o750); err != nil {
		return err
	}
	plugArgs = append(plugArgs, "--kubelet-root-dir", kubeletRoot)
	// The metadata service is the node's source of its server id; the
	// config drive does not exist here.
	if err := appendFile(filepath.Join(work, "cloud.conf"), "\n[Metadata]\nsearch-order = metadataService\n"); err != nil {
		return err
	}
	d.plugin = exec.Command(filepath.Join(d.opts.binDir, "cinder-csi-plugin"), plugArgs...)
	d.plugin.Stdout, d.plugin.Stderr = &d.logs.plugin, &d.logs.plugin
	var err error
	if d.plugDone, err = startProcess(d.plugin); err != nil {
		return fmt.Errorf("starting cinder-csi-plugin: %w", err)
	}
	_, err = waitFor(ctx, d.plugDone, "cinder-csi-plugin", func() ([]byte, bool) {
		st, err := os.Stat(socket)
		return nil, err == nil && st.Mode()&os.ModeSocket != 0
	})
	return err
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func startProcess(cmd *exec.Cmd) (chan error, error) {
	// Own process group: a Ctrl-C on the terminal reaches the demo, which
	// then stops its children in order (plugin before emulator).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}

// waitFor polls ready until it holds, the process exits, or startupTimeout.
func waitFor(ctx context.Context, done chan error, name string, ready func() ([]byte, bool)) ([]byte, error) {
	deadline := time.NewTimer(startupTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, ok := ready(); ok {
			return b, nil
		}
		select {
		case err := <-done:
			done <- err // stop() waits on it again
			return nil, fmt.Errorf("%s exited during start-up: %v", name, err)
		case <-deadline.C:
			return nil, fmt.Errorf("%s not ready after %s", name, startupTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// apiCalls reads the emulator's count of OpenStack API calls so far.
func (d *demo) apiCalls() int64 {
	resp, err := http.Get(d.emuURL + "/admin/counters")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var c struct {
		Total int64 `json:"total"`
	}
	if json.NewDecoder(resp.Body).Decode(&c) != nil {
		return -1
	}
	return c.Total
}

// stop ends the plugin, then the emulator (which detaches its loop
// devices on SIGTERM), removes the temp dir and checks that nothing is
// left: no mount under it, no loop device over the emulator's files.
func (d *demo) stop() error {
	if d.conn != nil {
		_ = d.conn.Close()
	}
	var errs []error
	stopProc := func(cmd *exec.Cmd, done chan error, name string) {
		if cmd == nil || cmd.Process == nil || done == nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		// The exit status is not checked: after a SIGTERM it is expected,
		// and a process that died earlier was reported when it did
		// (waitFor puts its status back for this receive).
		select {
		case <-done: //nolint:errcheck // the exit status after SIGTERM (see above)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done //nolint:errcheck // killed: the status says only that
			errs = append(errs, fmt.Errorf("%s ignored SIGTERM for 30s and was killed", name))
		}
	}
	stopProc(d.plugin, d.plugDone, "cinder-csi-plugin")
	if d.work != "" {
		for _, m := range mountsUnder(d.work) {
			errs = append(errs, fmt.Errorf("mount left behind at %s; unmounting it", m))
			_ = exec.Command("umount", "-l", m).Run()
		}
	}
	stopProc(d.emu, d.emuDone, "openstack-emulator")
	if d.root && d.work != "" {
		if out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output(); err == nil {
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, d.work+"/") {
					errs = append(errs, fmt.Errorf("loop device left behind: %s", strings.TrimSpace(l)))
				}
			}
		}
	}
	if d.work != "" {
		if err := os.RemoveAll(d.work); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append([]string{f[4]}, out...) // deepest last mounted, first out
		}
	}
	return out
}

// addVolumeType adds a volume type through the emulator's admin API.
func addVolumeType(ctx context.Context, emuURL, name string, extraSpecs map[string]string) error {
	body, err := json.Marshal(map[string]any{"name": name, "extra_specs": extraSpecs})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, emuURL+"/admin/volume-types", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("adding volume type %s to the emulator: %w", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("adding volume type %s to the emulator: HTTP %d", name, resp.StatusCode)
	}
	return nil
}
