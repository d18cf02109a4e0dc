// Command manila-csi-plugin is the Manila CSI driver
// (manila.csi.openstack.org): the controller service, the node service, or
// both, on one CSI endpoint, for NFS and CephFS shares.
package main

import (
	"context"
	"os"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila"
	"github.com/cinder-csi/cinder-csi/pkg/csi/pluginmain"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
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
	var o options
	return pluginmain.Run(pluginmain.Command{
		Name:         progName,
		Register:     o.register,
		ShowVersion:  &o.showVersion,
		Validate:     o.validate,
		Warnings:     o.warnings,
		HTTPEndpoint: &o.httpEndpoint,
		Build: func(ctx context.Context, m *metrics.Metrics) (*server.Server, error) {
			return build(ctx, &o, m)
		},
		Serving: func() []any {
			return []any{"driver", o.driverName, "version", version.Version, "endpoint", o.endpoint,
				"controller", o.provideController, "node", o.provideNode}
		},
	}, args)
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
