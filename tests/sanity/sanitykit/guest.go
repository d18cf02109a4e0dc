package sanitykit

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"google.golang.org/grpc"
)

// NodeInGuest points csi-sanity's paths into the guest (GuestPaths) and
// focuses the run on the node specs ("Node Service") unless the command
// line chose a focus.
func NodeInGuest(cfg *sanity.TestConfig, kubeletRoot string, sh func(script string) (string, error)) {
	GuestPaths(cfg, kubeletRoot, sh)
	for name, value := range map[string]string{"ginkgo.focus": "Node Service", "ginkgo.no-color": "true"} {
		if f := flag.Lookup(name); f != nil && !IsSet(name) {
			_ = f.Value.Set(value)
		}
	}
}

// GuestPaths points csi-sanity's target and staging paths into the guest
// where the node plugin runs (under its kubelet root), and creates,
// removes and checks them there with sh (a shell script run in the
// guest).
func GuestPaths(cfg *sanity.TestConfig, kubeletRoot string, sh func(script string) (string, error)) {
	cfg.TargetPath = kubeletRoot + "/pods/sanity/volumes/kubernetes.io~csi/pv"
	cfg.StagingPath = kubeletRoot + "/plugins/kubernetes.io/csi/sanity/globalmount"
	mkdir := func(p string) (string, error) { _, err := sh("mkdir -p " + p); return p, err }
	rm := func(p string) error { _, err := sh("rm -rf " + p); return err }
	cfg.CreateTargetDir, cfg.CreateStagingDir = mkdir, mkdir
	cfg.RemoveTargetPath, cfg.RemoveStagingPath = rm, rm
	cfg.CheckPath = func(p string) (sanity.PathKind, error) {
		out, err := sh(fmt.Sprintf("if [ -f %[1]s ] || [ -b %[1]s ]; then echo file; elif [ -d %[1]s ]; then echo directory; "+
			"elif [ -e %[1]s ]; then echo other; else echo not_found; fi", p))
		if err != nil {
			return "", err
		}
		return sanity.IsPathKind(strings.TrimSpace(out))
	}
}

// PluginCapabilitiesFrom is a dial option for csi-sanity's node
// connection that sends GetPluginCapabilities to controller instead. A
// node-only plugin (--provide-controller-service=false, as in a guest
// with no route to the cloud) does not advertise CONTROLLER_SERVICE, and
// csi-sanity asks the node endpoint before its node specs decide whether
// to ControllerPublish: without this they stage volumes nothing attached.
func PluginCapabilitiesFrom(controller *grpc.ClientConn) grpc.DialOption {
	return grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == csi.Identity_GetPluginCapabilities_FullMethodName {
			return controller.Invoke(ctx, method, req, reply, opts...)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}
