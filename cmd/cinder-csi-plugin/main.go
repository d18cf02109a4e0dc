// Command cinder-csi-plugin is the Cinder CSI driver: the controller
// service, the node service, or both, on one CSI endpoint.
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

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/httpserver"
	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run returns the process exit code: 0 after a clean stop, 1 when serving
// failed, 2 for a bad flag or configuration.
func run(args []string) int {
	fs := flag.NewFlagSet("cinder-csi-plugin", flag.ContinueOnError)
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
		fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
		return 2
	}
	defer logging.Flush()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := metrics.New()
	srv, err := build(ctx, &o, m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
		return 2
	}
	if _, err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
		return 2
	}
	if o.httpEndpoint != "" {
		hs, err := httpserver.New(httpserver.Options{Address: o.httpEndpoint, Metrics: m, Health: srv.Healthy})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
			return 2
		}
		l, err := hs.Listen()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cinder-csi-plugin:", err)
			return 2
		}
		go func() {
			if err := hs.Run(ctx, l); err != nil {
				klog.ErrorS(err, "HTTP endpoint stopped", "address", o.httpEndpoint)
			}
		}()
	}
	klog.InfoS("Serving", "driver", o.driverName, "version", version.Version, "endpoint", o.endpoint,
		"controller", o.provideController, "node", o.provideNode)
	if err := srv.Run(ctx); err != nil {
		klog.ErrorS(err, "CSI server stopped")
		return 1
	}
	return 0
}

// build reads the configuration and assembles the services the flags ask for.
func build(ctx context.Context, o *options, m *metrics.Metrics) (*server.Server, error) {
	// The node reads only [BlockStorage] and [Metadata]; a node given no
	// file runs on the defaults.
	cfg := &config.Config{}
	if len(o.cloudConfigs) > 0 {
		loaded, warnings, err := config.Load(o.cloudConfigs...)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			klog.InfoS("cloud.conf warning", "warning", w)
		}
		cfg = loaded
	}

	opts := server.Options{
		Endpoint:      o.endpoint,
		Metrics:       m,
		SlowThreshold: o.slowThreshold,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{
			DriverName:         o.driverName,
			Version:            version.Version,
			WithTopology:       o.withTopology,
			ProvidesController: o.provideController,
			// Volume group snapshots are served with the controller.
			ProvidesGroupController: o.provideController,
		}),
	}
	if o.provideController {
		cs, err := buildController(ctx, o, cfg, m)
		if err != nil {
			return nil, err
		}
		opts.Controller = cs
		opts.GroupController = cinder.NewGroupControllerServer(cs)
	}
	if o.provideNode {
		ns, err := buildNode(ctx, o, cfg, m)
		if err != nil {
			return nil, err
		}
		opts.Node = ns
	}
	return server.New(opts)
}
