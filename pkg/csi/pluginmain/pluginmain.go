// Package pluginmain is the life of a CSI plugin process both drivers'
// commands share: parse the flags, set up logging, build the services,
// listen, serve /metrics and /healthz when asked, and stop on SIGINT or
// SIGTERM. Each command keeps its own flags and how it builds its services.
package pluginmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/httpserver"
	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

// Command is what a plugin command brings to Run.
type Command struct {
	// Name prefixes every message on stderr.
	Name string
	// Register adds the command's flags.
	Register func(fs *flag.FlagSet)
	// ShowVersion, set by a flag, prints the version and exits.
	ShowVersion *bool
	// Validate checks the parsed flags.
	Validate func() error
	// Warnings, if set, lists flag combinations worth a log line.
	Warnings func() []string
	// Build assembles the services the flags ask for.
	Build func(ctx context.Context, m *metrics.Metrics) (*server.Server, error)
	// HTTPEndpoint, set by a flag, is the /metrics and /healthz address
	// ("" = off).
	HTTPEndpoint *string
	// Serving is the key/value pairs of the "Serving" log line.
	Serving func() []any
}

// Run returns the process exit code: 0 after a clean stop (or --help,
// --version), 1 when serving failed, 2 for a bad flag or configuration.
func Run(c Command, args []string) int {
	fs := NewFlagSet(c.Name, c.Register)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *c.ShowVersion {
		fmt.Println(version.Version)
		return 0
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, c.Name+":", err)
		return 2
	}
	if err := logging.Setup(); err != nil {
		return fail(err)
	}
	defer logging.Flush()
	if err := c.Validate(); err != nil {
		return fail(err)
	}
	if c.Warnings != nil {
		for _, w := range c.Warnings() {
			klog.InfoS("Flag warning", "warning", w)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m := metrics.New()
	srv, err := c.Build(ctx, m)
	if err != nil {
		return fail(err)
	}
	if _, err := srv.Listen(); err != nil {
		return fail(err)
	}
	if *c.HTTPEndpoint != "" {
		if err := serveHTTP(ctx, *c.HTTPEndpoint, m, srv); err != nil {
			return fail(err)
		}
	}
	klog.InfoS("Serving", c.Serving()...)
	if err := srv.Run(ctx); err != nil {
		klog.ErrorS(err, "CSI server stopped")
		return 1
	}
	return 0
}

// NewFlagSet returns the flag set of a plugin command: its own flags
// (register) and the logging flags. Tests parse with it to see what Run
// sees.
func NewFlagSet(name string, register func(fs *flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	register(fs)
	logging.AddFlags(fs)
	return fs
}

func serveHTTP(ctx context.Context, address string, m *metrics.Metrics, srv *server.Server) error {
	hs, err := httpserver.New(httpserver.Options{Address: address, Metrics: m, Health: srv.Healthy})
	if err != nil {
		return err
	}
	l, err := hs.Listen()
	if err != nil {
		return err
	}
	go func() {
		if err := hs.Run(ctx, l); err != nil {
			klog.ErrorS(err, "HTTP endpoint stopped", "address", address)
		}
	}()
	return nil
}
