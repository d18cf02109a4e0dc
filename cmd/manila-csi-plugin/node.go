package main

import (
	"context"
	"flag"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// The node service (pkg/csi/manilanode) is wired here: its flags and its
// constructor. Until it lands, a plugin asked for the node service serves
// identity and controller only and says so.
type nodeFlags struct{}

func (n *nodeFlags) register(*flag.FlagSet) {}

func buildNode(_ context.Context, o *options, _ *metrics.Metrics) (csi.NodeServer, error) {
	klog.InfoS("This build has no Manila node service yet; serving identity and controller only", "driver", o.driverName)
	return nil, nil
}
