package observability

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/httpserver"
	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// nodeID is the emulator's local server: the node under test.
const nodeID = "5a1c0e3b-7d2f-4e6a-9b8c-1d2e3f4a5b6c"

var klogFlags = flag.NewFlagSet("klog", flag.PanicOnError)

func TestMain(m *testing.M) {
	klog.InitFlags(klogFlags)
	os.Exit(m.Run())
}

// logBuf collects klog output; klog writes from many goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureLogs sends klog to a buffer at verbosity v in format ("text" or
// "json"), as --logging-format and -v do in the plugin, until the test ends.
func captureLogs(t *testing.T, format string, v int) *logBuf {
	t.Helper()
	buf := &logBuf{}
	for k, val := range map[string]string{"v": strconv.Itoa(v), "logtostderr": "false", "alsologtostderr": "false",
		"one_output": "true", "stderrthreshold": "FATAL"} {
		if err := klogFlags.Set(k, val); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(buf)
	if format == logging.FormatJSON {
		klog.SetLogger(logging.NewJSONLogger(buf))
	}
	t.Cleanup(func() {
		klog.Flush()
		klog.ClearLogger()
		klog.SetOutput(io.Discard)
		_ = klogFlags.Set("v", "0")
		if t.Failed() {
			t.Logf("captured logs (%s, -v=%d):\n%s", format, v, buf.String())
		}
	})
	return buf
}

// stack is the plugin wired as cmd/cinder-csi-plugin wires it, against
// the emulator.
type stack struct {
	t       *testing.T
	emu     *emulator.Emulator
	m       *metrics.Metrics
	srv     *server.Server
	ctrl    csi.ControllerClient
	node    csi.NodeClient
	httpURL string
	work    string
	devRoot string
}

type stackOptions struct {
	emu emulator.Options
	// conf builds cloud.conf from the running emulator; default: the
	// demo user's [Global] section.
	conf func(e *emulator.Emulator) string
	// node also serves the node service (devices under work/dev).
	node bool
	// wrapController lets a test put a misbehaving handler in front.
	wrapController func(csi.ControllerServer) csi.ControllerServer
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	work := t.TempDir()
	s := &stack{t: t, work: work, devRoot: filepath.Join(work, "dev")}
	sysRoot := filepath.Join(work, "sys")
	for _, d := range []string{s.devRoot, sysRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	eo := o.emu
	if o.node {
		eo.DevRoot, eo.SysRoot = s.devRoot, sysRoot
	}
	if len(eo.Servers) == 0 {
		eo.Servers = []emulator.ServerSpec{{ID: nodeID, Name: "obs-node", AZ: "nova", Local: o.node}}
	}
	emu, err := emulator.Start(eo)
	if err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	s.emu = emu
	t.Cleanup(func() { _ = emu.Close() })

	conf := emu.CloudConf("Global", "demo")
	if o.conf != nil {
		conf = o.conf(emu)
	}
	conf += "\n[Metadata]\nsearch-order = metadataService\n"
	confPath := filepath.Join(work, "cloud.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.m = metrics.New()
	clouds, err := openstack.NewClouds(ctx, []string{confPath}, openstack.Options{Observer: s.m, ReloadInterval: -1})
	if err != nil {
		cancel()
		t.Fatalf("building clouds: %v", err)
	}
	co := cinder.DefaultControllerOptions()
	co.Cluster = "observability"
	cs, err := cinder.NewControllerServer(clouds, co)
	if err != nil {
		cancel()
		t.Fatalf("controller: %v", err)
	}
	var controller csi.ControllerServer = cs
	if o.wrapController != nil {
		controller = o.wrapController(cs)
	}
	endpoint := "unix://" + filepath.Join(work, "csi.sock")
	so := server.Options{
		Endpoint: endpoint,
		Metrics:  s.m,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{
			DriverName: cinder.DefaultDriverName, Version: "observability", ProvidesController: true,
		}),
		Controller: controller,
	}
	if o.node {
		md, err := metadata.New(metadata.Options{SearchOrder: metadata.SourceMetadataService,
			URL: emu.URL() + "/openstack/latest/meta_data.json", DevRoot: s.devRoot})
		if err != nil {
			cancel()
			t.Fatalf("metadata: %v", err)
		}
		ns, err := cinder.NewNodeServer(cinder.NodeOptions{Metadata: md, DevRoot: s.devRoot, SysRoot: sysRoot, Metrics: s.m, KubeletRoot: s.work})
		if err != nil {
			cancel()
			t.Fatalf("node: %v", err)
		}
		so.Node = ns
	}
	srv, err := server.New(so)
	if err != nil {
		cancel()
		t.Fatalf("CSI server: %v", err)
	}
	if _, err := srv.Listen(); err != nil {
		cancel()
		t.Fatalf("CSI server: %v", err)
	}
	s.srv = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CSI server: %v", err)
		}
	})
	hs := httptest.NewServer(httpserver.Handler(s.m, srv.Healthy))
	t.Cleanup(hs.Close)
	s.httpURL = hs.URL

	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dialling %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.ctrl = csi.NewControllerClient(conn)
	s.node = csi.NewNodeClient(conn)
	waitServing(t, srv)
	return s
}

func waitServing(t *testing.T, srv *server.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !srv.Serving() {
		if time.Now().After(deadline) {
			t.Fatal("the CSI server did not start serving")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// get fetches path from the plugin's HTTP endpoint.
func (s *stack) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.httpURL + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseExposition reads the text format: enough for assertions on names,
// labels and values.
func parseExposition(t *testing.T, body string) []sample {
	t.Helper()
	var out []sample
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		head := line[:i]
		sm := sample{labels: map[string]string{}, value: v, name: head}
		if j := strings.IndexByte(head, '{'); j >= 0 {
			sm.name = head[:j]
			for _, m := range labelPair.FindAllStringSubmatch(head[j:], -1) {
				sm.labels[m[1]] = m[2]
			}
		}
		out = append(out, sm)
	}
	return out
}

// find sums the samples of name whose labels include want.
func find(samples []sample, name string, want map[string]string) (sum float64, found bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// labelValues returns the values label takes across the samples of name.
func labelValues(samples []sample, name, label string) map[string]bool {
	out := map[string]bool{}
	for _, s := range samples {
		if s.name == name {
			out[s.labels[label]] = true
		}
	}
	return out
}

func mountCap(fs string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func labels(kv ...string) map[string]string {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("labels: odd count %d", len(kv)))
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
