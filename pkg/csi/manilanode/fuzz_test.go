package manilanode

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// FuzzNodeRequest throws ids, paths, export locations and mount flags at
// the request checks: they never panic, and what they accept stays inside
// the rules (a path beneath the kubelet root, no refused option, no key
// on a command line).
func FuzzNodeRequest(f *testing.F) {
	f.Add(shareA, "/pods/x/mount", "NFS", nfsExpA, "hard", "")
	f.Add("a\nb", "/../etc", "CEPHFS", cephExpA, "remount", "fuse")
	f.Add(strings.Repeat("a", 300), "/proc/self", "nfs", "[::1]:/x", "--make-shared", "kernel")
	f.Add("vol", "//a/./b", "CEPHFS", "m:6789:/volumes/../x", "secret=AQB", "kernel")
	root := f.TempDir()
	ns, err := NewNodeServer(NodeOptions{NodeName: "n", NodeAddresses: []string{}, KubeletRootDir: root, Mounter: &fakeMounter{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, rel, protocol, export, flag, mounter string) {
		if validateVolumeID(id) == nil && (strings.ContainsAny(id, "/\x00\n") || len(id) > maxIDLength) {
			t.Fatalf("accepted volume id %q", id)
		}
		if p, err := ns.resolvePath("target_path", ns.root.Dir()+rel); err == nil {
			if !strings.HasPrefix(p, ns.root.Dir()+"/") || strings.Contains(p, "/../") {
				t.Fatalf("accepted path %q outside the root", p)
			}
		}
		vctx := map[string]string{KeyProtocol: protocol, KeyExportLocation: export, KeyCephClientID: "c", KeyCephFSMounter: mounter}
		spec, err := parseShareSpec(specInput{volumeID: shareA, capability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, flag), volumeContext: vctx})
		if err != nil {
			return
		}
		for _, o := range spec.Options {
			key, _, _ := strings.Cut(o, "=")
			if _, refused := refusedOptions[key]; refused || strings.HasPrefix(o, "-") || strings.ContainsAny(o, " ,\n") {
				t.Fatalf("accepted option %q", o)
			}
		}
		if strings.Contains(spec.Export.Path, "/../") || strings.HasSuffix(spec.Export.Path, "/..") {
			t.Fatalf("accepted export path %q", spec.Export.Path)
		}
		c, err := (&HostMounter{}).mountCommand(spec, "/keys/k", "/stage")
		if err == nil && len(c.Args) == 0 {
			t.Fatal("empty command")
		}
	})
}
