package httpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		health   func() error
		wantCode int
		wantBody string
	}{
		{"no check is healthy", nil, 200, "ok\n"},
		{"passing check", func() error { return nil }, 200, "ok\n"},
		{"failing check", func() error { return errors.New("CSI gRPC server is not serving") }, 503, "CSI gRPC server is not serving\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, Handler(nil, tt.health), http.MethodGet, "/healthz")
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest("volumev3", "volume_get", 200, 1)
	h := Handler(m, nil)
	tests := []struct {
		method, path string
		wantCode     int
		wantInBody   string
	}{
		{http.MethodGet, "/metrics", 200, `openstack_api_requests_total{code="200",operation="volume_get",request="volume_get",service="volumev3"} 1`},
		{http.MethodPost, "/metrics", 405, ""},
		{http.MethodGet, "/", 404, ""},
		{http.MethodGet, "/debug/pprof/", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, h, tt.method, tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("%s %s = %d, want %d with %q; body:\n%.300s", tt.method, tt.path, code, tt.wantCode, tt.wantInBody, body)
		}
	}
	if code, _ := get(t, Handler(nil, nil), http.MethodGet, "/metrics"); code != 404 {
		t.Errorf("GET /metrics without metrics = %d, want 404", code)
	}
}

func TestNewRejectsAnEmptyAddress(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New with no address succeeded")
	}
}

// /healthz follows the CSI server: healthy while it serves, unhealthy once
// it has stopped, and never anything else (no cloud call).
func TestHealthzFollowsTheCSIServer(t *testing.T) {
	csiServer, err := server.New(server.Options{
		Endpoint: "unix://" + filepath.Join(t.TempDir(), "csi.sock"),
		Identity: identity{},
	})
	if err != nil {
		t.Fatal(err)
	}
	httpServer, err := New(Options{Address: "127.0.0.1:0", Health: csiServer.Healthy})
	if err != nil {
		t.Fatal(err)
	}
	l, err := httpServer.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpServer.Run(ctx, l) }()
	url := "http://" + l.Addr().String() + "/healthz"

	status := func() int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 503 {
		t.Errorf("/healthz before the CSI server runs = %d, want 503", got)
	}
	if _, err := csiServer.Listen(); err != nil {
		t.Fatal(err)
	}
	csiCtx, csiCancel := context.WithCancel(context.Background())
	csiDone := make(chan error, 1)
	go func() { csiDone <- csiServer.Run(csiCtx) }()
	for !csiServer.Serving() {
		runtime.Gosched() // Run sets the flag as it starts serving
	}
	if got := status(); got != 200 {
		t.Errorf("/healthz while serving = %d, want 200", got)
	}
	csiCancel()
	<-csiDone
	if got := status(); got != 503 {
		t.Errorf("/healthz after the CSI server stopped = %d, want 503", got)
	}
	cancel()
	if err := <-httpDone; err != nil {
		t.Errorf("Run: %v", err)
	}
}

type identity struct {
	csi.UnimplementedIdentityServer
}
