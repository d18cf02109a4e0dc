package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

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
	if cfg.Reference {
		// cloud-provider-openstack's plugin has no client-side limiter.
		args = append(args, "--v", "0")
	} else if cfg.PluginQPS > 0 {
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
