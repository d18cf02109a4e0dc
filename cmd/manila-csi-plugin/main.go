// Command manila-csi-plugin is the Manila CSI driver
// (manila.csi.openstack.org): the controller service, the node service, or
// both, on one CSI endpoint, for NFS and CephFS shares.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/httpserver"
	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

const progName = "manila-csi-plugin"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run returns the process exit code: 0 after a clean stop, 1 when serving
// failed, 2 for a bad flag or configuration.
func run(args []string) int {
	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	var o options
	o.register(fs)
	logging.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.showVersion {
		fmt.Println(version.Version)
		return 0
	}
	if err := logging.Setup(); err != nil {
		fmt.Fprintln(os.Stderr, progName+":", err)
		return 2
	}
	defer logging.Flush()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, progName+":", err)
		return 2
	}
	for _, w := range o.warnings() {
		klog.InfoS("Flag warning", "warning", w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m := metrics.New()
	srv, err := build(ctx, &o, m)
	if err != nil {
		fmt.Fprintln(os.Stderr, progName+":", err)
		return 2
	}
	if _, err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, progName+":", err)
		return 2
	}
	if o.httpEndpoint != "" {
		if err := serveHTTP(ctx, o.httpEndpoint, m, srv); err != nil {
			fmt.Fprintln(os.Stderr, progName+":", err)
			return 2
		}
	}
	klog.InfoS("Serving", "driver", o.driverName, "version", version.Version, "endpoint", o.endpoint,
		"controller", o.provideController, "node", o.provideNode)
	if err := srv.Run(ctx); err != nil {
		klog.ErrorS(err, "CSI server stopped")
		return 1
	}
	return 0
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

// build assembles the services the flags ask for.
func build(ctx context.Context, o *options, m *metrics.Metrics) (*server.Server, error) {
	opts := server.Options{
		Endpoint:      o.endpoint,
		Metrics:       m,
		SlowThreshold: o.slowThreshold,
		Identity: manila.NewIdentityServer(manila.IdentityOptions{
			DriverName:         o.driverName,
			Version:            version.Version,
			WithTopology:       o.withTopology,
			ProvidesController: o.provideController,
		}),
	}
	if o.provideController {
		cs, err := buildController(ctx, o, m)
		if err != nil {
			return nil, err
		}
		opts.Controller = cs
	}
	if o.provideNode {
		ns, err := buildNode(ctx, o, m)
		if err != nil {
			return nil, err
		}
		if ns != nil {
			opts.Node = ns
		}
	}
	return server.New(opts)
}
