// Command cinder-csi-plugin is the Cinder CSI driver: the controller
// service, the node service, or both, on one CSI endpoint.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/pluginmain"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run returns the process exit code: 0 after a clean stop, 1 when serving
// failed, 2 for a bad flag or configuration.
func run(args []string) int {
	var o options
	return pluginmain.Run(pluginmain.Command{
		Name:        "cinder-csi-plugin",
		Register:    o.register,
		ShowVersion: &o.showVersion,
		Validate: func() error {
			o.applyPeerPodDefaults()
			return o.validate()
		},
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
		config.LogWarnings(warnings)
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
		cs, clouds, err := buildController(ctx, o, cfg, m)
		if err != nil {
			return nil, err
		}
		opts.Controller = cs
		opts.GroupController = cinder.NewGroupControllerServer(cs)
		if o.peerPods.enabled {
			if opts.Controller, err = startPeerPodController(ctx, o, cs, clouds); err != nil {
				return nil, fmt.Errorf("--peer-pods: %w", err)
			}
		}
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
