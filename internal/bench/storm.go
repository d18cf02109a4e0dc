package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// StormConfig shapes one RunStorm.
type StormConfig struct {
	// Plugin is the cinder-csi-plugin binary to run.
	Plugin string
	// Volumes are created and published across Nodes by Workers, the way
	// the provisioner's and attacher's worker pools issue them.
	Volumes, Nodes, Workers int
	// CloudRPS is the rate limit the emulator enforces per project (429
	// beyond it); PluginQPS and PluginBurst the plugin's client-side
	// limiter (--openstack-api-qps, --openstack-api-burst).
	CloudRPS    float64
	PluginQPS   float64
	PluginBurst int
	Profile     string
	Seed        int64
	// Log, when set, receives the plugin's output.
	Log io.Writer
}

// DefaultStorm is the storm of issue 10: 200 volumes, 10 nodes, 100
// workers, a cloud that allows 20 requests/s and a plugin limited to 18.
func DefaultStorm(plugin string) StormConfig {
	return StormConfig{Plugin: plugin, Volumes: 200, Nodes: 10, Workers: 100, CloudRPS: 20, PluginQPS: 18, PluginBurst: 10, Profile: "bench"}
}

// StormResult is one storm's figures.
type StormResult struct {
	// Up is 200 × (CreateVolume then ControllerPublish); Down is
	// 200 × (ControllerUnpublish then DeleteVolume).
	UpWall, DownWall time.Duration
	// Per-volume latency of each phase (both RPCs, retries included).
	Up, Down []time.Duration
	// Per-RPC latencies.
	RPC map[string][]time.Duration
	// Retries is how many RPCs answered a retryable code and were issued
	// again, as the sidecars would.
	Retries int
	// Calls counts every API call the cloud saw (Keystone included, 429s
	// included); Polls those the shared poller made; Mutating the POST,
	// PUT and DELETE ones.
	Calls, Polls, Mutating int
	// TooMany is the 429s the plugin received.
	TooMany int
	// PeakRSS is the plugin's VmHWM in bytes.
	PeakRSS int64
	// Leaked counts volumes or attachments left after the teardown.
	Leaked int
}

// RunStorm starts the emulator and the plugin binary and runs the storm.
func RunStorm(ctx context.Context, cfg StormConfig) (*StormResult, error) {
	if cfg.Profile == "" {
		cfg.Profile = "bench"
	}
	emu, err := emulator.Start(emulator.Options{Profile: cfg.Profile, Servers: servers(cfg.Nodes), Seed: cfg.Seed + 1,
		QuotaVolumes: -1, QuotaGigabytes: -1, QuotaSnapshots: -1, MaxDevicesPerServer: cfg.Volumes + 1,
		Faults: emulator.Faults{RateLimitRPS: cfg.CloudRPS}})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	p, err := startPlugin(ctx, cfg, emu)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	emu.ResetCounters()
	base, err := p.metric("openstack_api_requests_total")
	if err != nil {
		return nil, err
	}

	st := &storm{ctx: ctx, cfg: cfg, p: p, res: &StormResult{RPC: map[string][]time.Duration{}}, ids: make([]string, cfg.Volumes)}
	res := st.res
	start := time.Now()
	res.Up, err = pool(cfg.Workers, cfg.Volumes, st.up)
	res.UpWall = time.Since(start)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	res.Down, err = pool(cfg.Workers, cfg.Volumes, st.down)
	res.DownWall = time.Since(start)
	if err != nil {
		return nil, err
	}
	if err := st.countCalls(emu, base); err != nil {
		return nil, err
	}
	if res.PeakRSS, err = peakRSS(p.cmd.Process.Pid); err != nil {
		return nil, err
	}
	res.Leaked = len(emu.Volumes()) + len(emu.Attachments())
	return res, nil
}

// storm is one storm's state: the plugin it drives, the volume ids the
// up jobs made for the down jobs, and the result being filled.
type storm struct {
	ctx context.Context
	cfg StormConfig
	p   *plugin
	ids []string

	mu  sync.Mutex // guards res.RPC and res.Retries
	res *StormResult
}

func (st *storm) record(rpc string, d time.Duration, retries int) {
	st.mu.Lock()
	st.res.RPC[rpc] = append(st.res.RPC[rpc], d)
	st.res.Retries += retries
	st.mu.Unlock()
}

// up is job i of the first half: create volume i and publish it to its
// node.
func (st *storm) up(i int) error {
	var r *csi.CreateVolumeResponse
	d, n, err := retry(st.ctx, func(ctx context.Context) (err error) {
		r, err = st.p.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-storm-%03d", i),
			VolumeCapabilities: []*csi.VolumeCapability{mountCap}, CapacityRange: &csi.CapacityRange{RequiredBytes: gib}})
		return err
	})
	if err != nil {
		return fmt.Errorf("CreateVolume %d: %w", i, err)
	}
	st.record(OpCreate, d, n)
	st.ids[i] = r.GetVolume().GetVolumeId()
	d, n, err = retry(st.ctx, func(ctx context.Context) error {
		_, err := st.p.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: st.ids[i], NodeId: nodeID(i % st.cfg.Nodes), VolumeCapability: mountCap})
		return err
	})
	if err != nil {
		return fmt.Errorf("ControllerPublish %d: %w", i, err)
	}
	st.record(OpPublish, d, n)
	return nil
}

// down is job i of the second half: unpublish volume i and delete it.
func (st *storm) down(i int) error {
	d, n, err := retry(st.ctx, func(ctx context.Context) error {
		_, err := st.p.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: st.ids[i], NodeId: nodeID(i % st.cfg.Nodes)})
		return err
	})
	if err != nil {
		return fmt.Errorf("ControllerUnpublish %d: %w", i, err)
	}
	st.record(OpUnpublish, d, n)
	d, n, err = retry(st.ctx, func(ctx context.Context) error {
		_, err := st.p.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: st.ids[i]})
		return err
	})
	if err != nil {
		return fmt.Errorf("DeleteVolume %d: %w", i, err)
	}
	st.record(OpDelete, d, n)
	return nil
}

// countCalls fills the call counts: the cloud's (all, mutating) from the
// emulator, the plugin's 429s and polls from its metrics since base.
func (st *storm) countCalls(emu *emulator.Emulator, base map[string]float64) error {
	res := st.res
	res.Calls = int(emu.TotalCalls())
	for k, v := range emu.Counters() {
		if m, _, _ := strings.Cut(k, " "); m != "GET" && m != "HEAD" {
			res.Mutating += int(v)
		}
	}
	after, err := st.p.metric("openstack_api_requests_total")
	if err != nil {
		return err
	}
	for series, v := range after {
		d := int(v - base[series])
		if strings.Contains(series, `code="429"`) {
			res.TooMany += d
		}
		if strings.Contains(series, `operation="volume_poll"`) || strings.Contains(series, `operation="snapshot_poll"`) {
			res.Polls += d
		}
	}
	return nil
}

// pool runs n jobs on workers goroutines and returns each job's duration.
func pool(workers, n int, job func(i int) error) ([]time.Duration, error) {
	jobs := make(chan int)
	durs := make([]time.Duration, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				start := time.Now()
				if err := job(i); err != nil {
					once.Do(func() { first = err })
				}
				durs[i] = time.Since(start)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return durs, first
}

// sidecarTimeout is the per-call deadline; the sidecars' defaults are
// shorter (10-15 s) but retry, which a long deadline measures without the
// retry's own backoff.
const sidecarTimeout = 2 * time.Minute

// retry issues rpc until it answers something other than Aborted or
// Unavailable, as the sidecars do, and returns the total time and how many
// retries it took.
func retry(ctx context.Context, rpc func(context.Context) error) (time.Duration, int, error) {
	start := time.Now()
	for n := 0; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, sidecarTimeout)
		err := rpc(cctx)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			return time.Since(start), n, nil
		case codes.Aborted, codes.Unavailable, codes.DeadlineExceeded:
			if n >= 20 || ctx.Err() != nil {
				return 0, n, err
			}
			time.Sleep(time.Second)
		default:
			return 0, n, err
		}
	}
}

type plugin struct {
	cmd     *exec.Cmd
	conn    *grpc.ClientConn
	cc      csi.ControllerClient
	metrics string
	dir     string
	exited  chan struct{}
}

func startPlugin(ctx context.Context, cfg StormConfig, emu *emulator.Emulator) (*plugin, error) {
	dir, err := os.MkdirTemp("", "csi-bench-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "cloud.conf")
	if err := os.WriteFile(conf, []byte(emu.CloudConf("Global", "demo")), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	metricsAddr := l.Addr().String()
	l.Close()
	sock := filepath.Join(dir, "csi.sock")
	args := []string{"--endpoint", "unix://" + sock, "--cloud-config", conf, "--provide-node-service=false",
		"--cluster", "bench", "--http-endpoint", metricsAddr}
	if cfg.PluginQPS > 0 {
		args = append(args, "--openstack-api-qps", strconv.FormatFloat(cfg.PluginQPS, 'f', -1, 64), "--openstack-api-burst", strconv.Itoa(cfg.PluginBurst))
	}
	cmd := exec.CommandContext(ctx, cfg.Plugin, args...)
	if cfg.Log != nil {
		cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &plugin{cmd: cmd, metrics: "http://" + metricsAddr + "/metrics", dir: dir, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-p.exited:
			p.stop()
			return nil, errors.New("the plugin exited at start; run with its log to see why")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("the plugin did not open its socket within 30 s")
		}
	}
	p.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.stop()
		return nil, err
	}
	p.cc = csi.NewControllerClient(p.conn)
	return p, nil
}

func (p *plugin) stop() {
	if p.conn != nil {
		p.conn.Close()
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.RemoveAll(p.dir)
}

// metric reads every series of one counter from the plugin's /metrics.
func (p *plugin) metric(name string) (map[string]float64, error) {
	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ {
		if resp, err = http.Get(p.metrics); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the plugin's metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// peakRSS reads VmHWM (the resident set's high-water mark) of pid.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}
