package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// logs captures klog output for every test in the package, at the highest
// verbosity, so secret-stripping is checked where the most is logged.
var logs = &syncBuffer{}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	klog.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	klog.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// klogFlags lets a benchmark lower the verbosity.
var klogFlags = flag.NewFlagSet("klog", flag.ExitOnError)

func TestMain(m *testing.M) {
	fs := klogFlags
	klog.InitFlags(fs)
	for k, v := range map[string]string{"v": "10", "logtostderr": "false", "alsologtostderr": "false", "one_output": "true", "skip_headers": "true", "stderrthreshold": "FATAL"} {
		if err := fs.Set(k, v); err != nil {
			panic(err)
		}
	}
	klog.SetOutput(logs)
	os.Exit(m.Run())
}

// fakeIdentity, fakeController and fakeNode let each test decide what a
// handler does.
type fakeIdentity struct {
	csi.UnimplementedIdentityServer
}

func (fakeIdentity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

type fakeController struct {
	csi.UnimplementedControllerServer
	createVolume func(context.Context, *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error)
	publish      func(context.Context, *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error)
}

func (f *fakeController) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	return f.createVolume(ctx, req)
}

func (f *fakeController) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	return f.publish(ctx, req)
}

type fakeNode struct {
	csi.UnimplementedNodeServer
	stage func(context.Context, *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error)
}

func (f *fakeNode) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	return f.stage(ctx, req)
}

// startServer runs a server on a socket in a temp dir and returns a
// connection to it; everything stops at test cleanup.
func startServer(t *testing.T, opts Options) (*Server, *grpc.ClientConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	opts.Endpoint = "unix://" + sock
	if opts.Identity == nil {
		opts.Identity = fakeIdentity{}
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv, conn
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, network, address string
		wantErr                    bool
	}{
		{"unix:///csi/csi.sock", "unix", "/csi/csi.sock", false},
		{"UNIX:///csi/csi.sock", "unix", "/csi/csi.sock", false},
		{"unix://relative.sock", "unix", "relative.sock", false},
		{"tcp://127.0.0.1:10000", "tcp", "127.0.0.1:10000", false},
		{"tcp://:0", "tcp", ":0", false},
		{"tcp://127.0.0.1", "", "", true},
		{"unix://", "", "", true},
		{"/csi/csi.sock", "", "", true},
		{"http://localhost:80", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			network, address, err := ParseEndpoint(tt.endpoint)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseEndpoint(%q) error = %v, wantErr %v", tt.endpoint, err, tt.wantErr)
			}
			if network != tt.network || address != tt.address {
				t.Errorf("ParseEndpoint(%q) = %q, %q; want %q, %q", tt.endpoint, network, address, tt.network, tt.address)
			}
		})
	}
}

func TestNewRequiresIdentity(t *testing.T) {
	if _, err := New(Options{Endpoint: "tcp://127.0.0.1:0"}); err == nil {
		t.Fatal("New without an identity server succeeded")
	}
}

func TestListenRemovesAStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "csi.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // leaves the socket file behind, as a crashed plugin does
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	srv, err := New(Options{Endpoint: "unix://" + sock, Identity: fakeIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	srv.Stop()
}

func TestListenRefusesToRemoveANonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "csi.sock")
	if err := os.WriteFile(path, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Endpoint: "unix://" + path, Identity: fakeIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: err = %v, want 'not a socket'", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Error("the regular file was changed")
	}
}

func TestRunServesUntilContextEndsAndReportsServing(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sub", "csi.sock")
	srv, err := New(Options{Endpoint: "unix://" + sock, Identity: fakeIdentity{}})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Serving() || srv.Healthy() == nil {
		t.Fatal("server reports serving before Run")
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := csi.NewIdentityClient(conn).Probe(context.Background(), &csi.ProbeRequest{}); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if !srv.Serving() || srv.Healthy() != nil {
		t.Error("server does not report serving while it serves")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if srv.Serving() {
		t.Error("server reports serving after stop")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}
}

func TestRunCancelsCallsStillRunningAfterTheGracePeriod(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	ctrl := &fakeController{createVolume: func(ctx context.Context, _ *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
		close(started)
		<-ctx.Done() // a handler following its context, as all of ours do
		handlerErr <- ctx.Err()
		return nil, status.Error(codes.Aborted, "stopped")
	}}
	sock := filepath.Join(t.TempDir(), "csi.sock")
	srv, err := New(Options{Endpoint: "unix://" + sock, Identity: fakeIdentity{}, Controller: ctrl, GracefulTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		_, _ = csi.NewControllerClient(conn).CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-1"}, grpc.WaitForReady(true))
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-handlerErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler context error = %v, want Canceled", err)
	}
}

func TestPanicBecomesInternalWithTheStackLogged(t *testing.T) {
	const marker = "PANIC-VALUE-MAY-HOLD-ANYTHING"
	m := metrics.New()
	ctrl := &fakeController{createVolume: func(context.Context, *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
		panic(marker)
	}}
	_, conn := startServer(t, Options{Controller: ctrl, Metrics: m})
	logs.Reset()

	_, err := csi.NewControllerClient(conn).CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-1"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("code = %v, want Internal (err %v)", status.Code(err), err)
	}
	if strings.Contains(err.Error(), marker) {
		t.Errorf("the panic value reached the caller: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"CSI handler panicked", "stack=", "server_test.go", `method="CreateVolume"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(scrape(t, m), `cinder_csi_rpc_requests_total{code="Internal",method="CreateVolume"} 1`) {
		t.Error("the recovered panic was not counted as Internal")
	}
}

func TestRequestIDIsReusedOrGenerated(t *testing.T) {
	var seen string
	ctrl := &fakeController{createVolume: func(ctx context.Context, _ *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
		seen = RequestID(ctx)
		return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: "vol-1"}}, nil
	}}
	_, conn := startServer(t, Options{Controller: ctrl})
	client := csi.NewControllerClient(conn)

	tests := []struct {
		name     string
		incoming string
		reuse    bool
	}{
		{"caller's id is reused", "req-from-provisioner-42", true},
		{"no id: one is generated", "", false},
		{"id with a quote is replaced", `evil" level="error`, false},
		{"id with a space is replaced", "a b", false},
		{"over-long id is replaced", strings.Repeat("x", maxRequestIDLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.incoming != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, RequestIDKey, tt.incoming)
			}
			var header metadata.MD
			if _, err := client.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1"}, grpc.Header(&header)); err != nil {
				t.Fatal(err)
			}
			if tt.reuse && seen != tt.incoming {
				t.Errorf("RequestID = %q, want the caller's %q", seen, tt.incoming)
			}
			if !tt.reuse && (!strings.HasPrefix(seen, "csi-") || len(seen) != len("csi-")+36) {
				t.Errorf("RequestID = %q, want a generated csi-<uuid>", seen)
			}
			if got := header.Get(RequestIDKey); len(got) != 1 || got[0] != seen {
				t.Errorf("response header %s = %v, want [%s]", RequestIDKey, got, seen)
			}
		})
	}
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("duplicate request id %s", id)
		}
		seen[id] = true
	}
}

func TestEachCallIsLoggedWithItsIDsCodeAndDuration(t *testing.T) {
	ctrl := &fakeController{publish: func(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
		klog.FromContext(ctx).Info("Handler line")
		if req.GetVolumeId() == "vol-missing" {
			return nil, status.Error(codes.NotFound, "volume vol-missing not found")
		}
		return &csi.ControllerPublishVolumeResponse{}, nil
	}}
	_, conn := startServer(t, Options{Controller: ctrl})
	client := csi.NewControllerClient(conn)

	tests := []struct {
		volumeID string
		want     []string
	}{
		{"vol-1", []string{`"CSI call done"`, `code="OK"`}},
		{"vol-missing", []string{`"CSI call failed"`, `code="NotFound"`, `err="rpc error: code = NotFound desc = volume vol-missing not found"`}},
	}
	for _, tt := range tests {
		t.Run(tt.volumeID, func(t *testing.T) {
			logs.Reset()
			ctx := metadata.AppendToOutgoingContext(context.Background(), RequestIDKey, "rid-"+tt.volumeID)
			_, _ = client.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: tt.volumeID, NodeId: "node-7"})
			out := logs.String()
			want := append([]string{
				`method="ControllerPublishVolume"`, `volumeID="` + tt.volumeID + `"`, `nodeID="node-7"`,
				`requestID="rid-` + tt.volumeID + `"`, `took=`,
			}, tt.want...)
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %s:\n%s", w, out)
				}
			}
			// The handler's own line carries the call's ids from the context logger.
			handlerLine := lineContaining(out, "Handler line")
			if !strings.Contains(handlerLine, `requestID="rid-`+tt.volumeID+`"`) || !strings.Contains(handlerLine, `volumeID="`+tt.volumeID+`"`) {
				t.Errorf("handler log line lacks the call's ids: %q", handlerLine)
			}
		})
	}
}

func TestCreateVolumeLogsTheVolumeIDItCreated(t *testing.T) {
	ctrl := &fakeController{createVolume: func(context.Context, *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
		return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: "vol-new"}}, nil
	}}
	_, conn := startServer(t, Options{Controller: ctrl})
	logs.Reset()
	if _, err := csi.NewControllerClient(conn).CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-9"}); err != nil {
		t.Fatal(err)
	}
	done := lineContaining(logs.String(), `"CSI call done"`)
	if !strings.Contains(done, `name="pvc-9"`) || !strings.Contains(done, `volumeID="vol-new"`) {
		t.Errorf("completion line lacks name or new volume id: %q", done)
	}
}

func TestSlowCallsAreLoggedWithTheirTimings(t *testing.T) {
	ctrl := &fakeController{publish: func(ctx context.Context, _ *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
		RecordTiming(ctx, "attach", 3*time.Second)
		RecordTiming(ctx, "waitInUse", 40*time.Second)
		return &csi.ControllerPublishVolumeResponse{}, nil
	}}
	tests := []struct {
		name      string
		threshold time.Duration
		wantSlow  bool
	}{
		{"every call is slower than a nanosecond", time.Nanosecond, true},
		{"nothing is slower than an hour", time.Hour, false},
		{"negative threshold disables the report", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, conn := startServer(t, Options{Controller: ctrl, SlowThreshold: tt.threshold})
			logs.Reset()
			if _, err := csi.NewControllerClient(conn).ControllerPublishVolume(context.Background(), &csi.ControllerPublishVolumeRequest{VolumeId: "vol-1", NodeId: "node-1"}); err != nil {
				t.Fatal(err)
			}
			slow := lineContaining(logs.String(), "Slow CSI call")
			if (slow != "") != tt.wantSlow {
				t.Fatalf("slow-call line = %q, want present: %v", slow, tt.wantSlow)
			}
			if tt.wantSlow && !strings.Contains(slow, `timings="attach=3s waitInUse=40s"`) {
				t.Errorf("slow-call line lacks the timings: %q", slow)
			}
		})
	}
}

func TestRecordTimingOutsideACallIsHarmless(t *testing.T) {
	RecordTiming(context.Background(), "x", time.Second)
	if got := Timings(context.Background()); got != nil {
		t.Errorf("Timings outside a call = %v, want nil", got)
	}
}

func TestRPCMetricsAreRecorded(t *testing.T) {
	m := metrics.New()
	ctrl := &fakeController{publish: func(_ context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
		if req.GetNodeId() == "" {
			return nil, status.Error(codes.InvalidArgument, "node id missing")
		}
		return &csi.ControllerPublishVolumeResponse{}, nil
	}}
	_, conn := startServer(t, Options{Controller: ctrl, Metrics: m})
	client := csi.NewControllerClient(conn)
	_, _ = client.ControllerPublishVolume(context.Background(), &csi.ControllerPublishVolumeRequest{VolumeId: "v", NodeId: "n"})
	_, _ = client.ControllerPublishVolume(context.Background(), &csi.ControllerPublishVolumeRequest{VolumeId: "v"})
	_, _ = csi.NewIdentityClient(conn).Probe(context.Background(), &csi.ProbeRequest{})

	out := scrape(t, m)
	for _, want := range []string{
		`cinder_csi_rpc_requests_total{code="OK",method="ControllerPublishVolume"} 1`,
		`cinder_csi_rpc_requests_total{code="InvalidArgument",method="ControllerPublishVolume"} 1`,
		`cinder_csi_rpc_requests_total{code="OK",method="Probe"} 1`,
		`cinder_csi_rpc_duration_seconds_count{code="OK",method="ControllerPublishVolume"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnregisteredServiceIsUnimplemented(t *testing.T) {
	_, conn := startServer(t, Options{}) // identity only
	_, err := csi.NewNodeClient(conn).NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("node call on a controller-only server: code %v, want Unimplemented", status.Code(err))
	}
}

func lineContaining(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			labels := make([]string, 0, len(metric.GetLabel()))
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			lbl := "{" + strings.Join(labels, ",") + "}"
			switch {
			case metric.GetCounter() != nil:
				b.WriteString(name + lbl + " " + trimFloat(metric.GetCounter().GetValue()) + "\n")
			case metric.GetHistogram() != nil:
				b.WriteString(name + "_count" + lbl + " " + trimFloat(float64(metric.GetHistogram().GetSampleCount())) + "\n")
			}
		}
	}
	return b.String()
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(strings.TrimRight(strconvF(f), "0"), "."), ".")
}

func TestDescribePanicKeepsRuntimeErrorsAndWithholdsValues(t *testing.T) {
	runtimeErr := func() (r any) {
		defer func() { r = recover() }()
		var m map[string]int
		m["x"] = 1 //nolint:staticcheck // SA5000: the nil-map panic is the runtime error under test
		return nil
	}()
	tests := []struct {
		value any
		want  string
	}{
		{runtimeErr, "panic: assignment to entry in nil map"},
		{"password=" + "hunter2", "panic with a string value (withheld: it may hold request data)"},
		{errors.New("wrapped hunter2"), "panic with a *errors.errorString value (withheld: it may hold request data)"},
	}
	for _, tt := range tests {
		if got := describePanic(tt.value); got != tt.want {
			t.Errorf("describePanic(%v) = %q, want %q", tt.value, got, tt.want)
		}
	}
}
