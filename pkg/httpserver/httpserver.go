// Package httpserver serves the --http-endpoint: /metrics for Prometheus
// and /healthz for a liveness probe. /healthz never calls OpenStack: a
// cloud outage must not get every plugin pod restarted, which would only
// add load while the cloud recovers.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// Timeouts of the listener. Scrapes and probes are small requests; the
// limits only stop a slow or idle client from holding a connection.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	// Address to listen on, e.g. ":9809" or "127.0.0.1:0".
	Address string
	// Metrics is served on /metrics; nil answers 404 there.
	Metrics *metrics.Metrics
	// Health answers /healthz: nil error is healthy (200 "ok"), an error is
	// unhealthy (503 with the error text). A nil Health is always healthy.
	// Pass the CSI server's Healthy method.
	Health func() error
}

// Server is the HTTP listener. Build it with New, run it with Run.
type Server struct {
	address string
	http    *http.Server
}

// New builds the server; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Address == "" {
		return nil, errors.New("http server: empty address")
	}
	return &Server{address: opts.Address, http: &http.Server{
		Handler:           Handler(opts.Metrics, opts.Health),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}}, nil
}

// Handler is the mux: /metrics and /healthz. Exported for tests and for
// callers with their own listener.
func Handler(m *metrics.Metrics, health func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if health != nil {
			if err := health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Listen opens the address, so a bad --http-endpoint fails at start-up
// and port 0 can be resolved.
func (s *Server) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", s.address)
	if err != nil {
		return nil, fmt.Errorf("http server: listen on %s: %w", s.address, err)
	}
	return l, nil
}

// Run serves on l (from Listen; nil to listen now) until ctx ends, then
// shuts down. It returns nil after a stop caused by ctx.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	if l == nil {
		var err error
		if l, err = s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	klog.InfoS("Serving metrics and health", "address", l.Addr().String())
	go func() { errc <- s.http.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		_ = s.http.Close()
	}
	// Serve returns http.ErrServerClosed after Shutdown or Close; report
	// anything else.
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.ErrorS(err, "HTTP server: serving ended with an error while stopping")
	}
	return nil
}
