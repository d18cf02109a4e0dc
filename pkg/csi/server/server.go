// Package server runs the CSI gRPC server: it listens on the --endpoint,
// registers whichever of the Identity, Controller and Node services it is
// given, and wraps every call in one interceptor that recovers panics,
// assigns a request id, logs the call with secrets stripped and records the
// CSI RPC metrics.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// DefaultSlowThreshold is used when Options.SlowThreshold is zero. The
// sidecars' default deadline is 2–5 minutes and a healthy attach takes well
// under 30 s on the clouds we have measured, so 30 s flags calls that are on
// their way to a sidecar timeout.
const DefaultSlowThreshold = 30 * time.Second

// DefaultGracefulTimeout bounds how long Run waits for in-flight calls after
// its context ends before it cancels them. Handlers follow their contexts,
// so a hard stop only cuts waits that the sidecars will retry anyway; the
// kubelet's default termination grace period is 30 s.
const DefaultGracefulTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Endpoint is unix:///path/to/socket or tcp://host:port.
	Endpoint string

	// The services to serve. Identity is required; a nil Controller or Node
	// is simply not registered.
	Identity   csi.IdentityServer
	Controller csi.ControllerServer
	Node       csi.NodeServer
	// GroupController (volume group snapshots) is registered when set.
	GroupController csi.GroupControllerServer

	// Metrics records CSI RPC metrics; nil records nothing.
	Metrics *metrics.Metrics

	// SlowThreshold: calls slower than this are logged at info level with
	// their timings. Zero means DefaultSlowThreshold; negative disables.
	SlowThreshold time.Duration

	// GracefulTimeout: zero means DefaultGracefulTimeout.
	GracefulTimeout time.Duration

	// ServerOptions are appended to the server's own (tests, message size).
	ServerOptions []grpc.ServerOption
}

// Server is a CSI gRPC server. Build it with New, run it with Run.
type Server struct {
	network, address string
	grpc             *grpc.Server
	gracefulTimeout  time.Duration

	mu       sync.Mutex
	listener net.Listener
	serving  atomic.Bool
}

// New validates the options and builds the server. It does not listen yet.
func New(opts Options) (*Server, error) {
	network, address, err := ParseEndpoint(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if opts.Identity == nil {
		return nil, errors.New("csi server: the identity service is required")
	}
	slow := opts.SlowThreshold
	if slow == 0 {
		slow = DefaultSlowThreshold
	}
	graceful := opts.GracefulTimeout
	if graceful <= 0 {
		graceful = DefaultGracefulTimeout
	}
	ic := &interceptor{metrics: opts.Metrics, slowThreshold: slow}
	serverOpts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.unary)}, opts.ServerOptions...)
	g := grpc.NewServer(serverOpts...)
	csi.RegisterIdentityServer(g, opts.Identity)
	if opts.Controller != nil {
		csi.RegisterControllerServer(g, opts.Controller)
	}
	if opts.Node != nil {
		csi.RegisterNodeServer(g, opts.Node)
	}
	if opts.GroupController != nil {
		csi.RegisterGroupControllerServer(g, opts.GroupController)
	}
	return &Server{network: network, address: address, grpc: g, gracefulTimeout: graceful}, nil
}

// ParseEndpoint splits a CSI endpoint into a network ("unix" or "tcp") and
// an address: unix:///csi/csi.sock → ("unix", "/csi/csi.sock"),
// tcp://127.0.0.1:10000 → ("tcp", "127.0.0.1:10000").
func ParseEndpoint(endpoint string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return "", "", fmt.Errorf("endpoint %q: want unix:///path or tcp://host:port", endpoint)
	}
	switch strings.ToLower(scheme) {
	case "unix":
		if rest == "" {
			return "", "", fmt.Errorf("endpoint %q: empty socket path", endpoint)
		}
		return "unix", rest, nil
	case "tcp":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("endpoint %q: %v", endpoint, err)
		}
		return "tcp", rest, nil
	default:
		return "", "", fmt.Errorf("endpoint %q: scheme %q is not unix or tcp", endpoint, scheme)
	}
}

// Listen opens the endpoint. A unix socket left by a previous run is
// removed first; any other file at that path is an error, since removing it
// could destroy something that is not ours. Run calls Listen if needed;
// calling it first lets the caller learn the address (tcp port 0) or fail
// before starting other goroutines.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return s.listener.Addr(), nil
	}
	if s.network == "unix" {
		if err := removeStaleSocket(s.address); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(s.address), 0o750); err != nil {
			return nil, fmt.Errorf("csi server: socket directory: %w", err)
		}
	}
	l, err := net.Listen(s.network, s.address)
	if err != nil {
		return nil, fmt.Errorf("csi server: listen on %s://%s: %w", s.network, s.address, err)
	}
	s.listener = l
	return l.Addr(), nil
}

func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csi server: %w", err)
	}
	if info.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("csi server: %s exists and is not a socket; refusing to remove it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("csi server: remove stale socket: %w", err)
	}
	klog.InfoS("Removed stale CSI socket", "path", path)
	return nil
}

// Run listens (unless Listen was called) and serves until ctx ends, then
// stops gracefully: in-flight calls get GracefulTimeout to finish before
// they are cancelled. It returns nil after a stop caused by ctx, or the
// serving error. For stop on SIGTERM, pass a signal.NotifyContext.
func (s *Server) Run(ctx context.Context) error {
	addr, err := s.Listen()
	if err != nil {
		return err
	}
	s.mu.Lock()
	l := s.listener
	s.mu.Unlock()

	errc := make(chan error, 1)
	s.serving.Store(true)
	klog.InfoS("Serving CSI", "endpoint", s.network+"://"+addr.String())
	go func() { errc <- s.grpc.Serve(l) }()

	select {
	case err := <-errc:
		s.serving.Store(false)
		return fmt.Errorf("csi server: %w", err)
	case <-ctx.Done():
	}
	s.serving.Store(false)
	klog.InfoS("Stopping CSI server", "gracePeriod", s.gracefulTimeout)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.gracefulTimeout):
		klog.InfoS("CSI calls still running after the grace period; cancelling them")
		s.grpc.Stop()
		<-stopped
	}
	// Serve returns nil once Stop or GracefulStop was called; anything
	// else is a failure of the stop itself, worth a log line.
	if err := <-errc; err != nil {
		klog.ErrorS(err, "CSI server: serving ended with an error while stopping")
	}
	if s.network == "unix" {
		// Serve's listener removes its own socket on close; make sure.
		_ = os.Remove(s.address)
	}
	return nil
}

// Serving reports whether the server is accepting calls: the /healthz
// liveness answer.
func (s *Server) Serving() bool { return s.serving.Load() }

// Healthy is Serving as an error, for httpserver.Options.Health.
func (s *Server) Healthy() error {
	if !s.Serving() {
		return errors.New("CSI gRPC server is not serving")
	}
	return nil
}

// Stop cancels every in-flight call and closes the listener at once.
func (s *Server) Stop() {
	s.serving.Store(false)
	s.grpc.Stop()
}
