package sanitykit

import (
	"flag"
	"fmt"
	"strings"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
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
