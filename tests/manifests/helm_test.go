package manifests_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "charts/cinder-csi-plugin"

// kubeVersion is what the chart is rendered for: the k8s rig's apiserver.
const kubeVersion = "1.33.13"

// helmBinary finds a helm binary: $HELM, then PATH, then the pinned one
// `make helm` installs in bin/, then the build older docs suggest
// (GOBIN=/tmp/helmbin go install helm.sh/helm/v3/cmd/helm@v3.18.6). The
// Makefile's unit target looks in the same places to say it skips.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	for _, h := range []string{filepath.Join(repoRoot(t), "bin", "helm"), "/tmp/helmbin/helm"} {
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	t.Skip("helm not found: run `make helm` (pinned v3.18.6 into bin/) or set HELM")
	return ""
}

func runHelm(t *testing.T, helm string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helm, args...)
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return out
}

func renderChart(t *testing.T, helm string, set ...string) []sidecarargs.Object {
	t.Helper()
	args := []string{"template", "cinder-csi", chartDir, "--namespace", "kube-system", "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	objs, err := sidecarargs.ParseStream("helm template", runHelm(t, helm, args...))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, err := decode(o); err != nil {
			t.Error(err)
		}
	}
	return objs
}

// comparableForm strips what may differ between chart and kustomize: the
// top-level labels and annotations (Helm's bookkeeping) and Secret data
// (the example cloud.conf).
func comparableForm(t *testing.T, o sidecarargs.Object) []byte {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(o.Data, &m); err != nil {
		t.Fatal(err)
	}
	meta := m["metadata"].(map[string]any)
	delete(meta, "labels")
	delete(meta, "annotations")
	if o.Kind == "Secret" {
		data, _ := m["stringData"].(map[string]any)
		keys := []string{}
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		m["stringData"] = keys
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHelmLint(t *testing.T) {
	helm := helmBinary(t)
	out := runHelm(t, helm, "lint", "--strict", chartDir, "--namespace", "kube-system", "--kube-version", kubeVersion)
	t.Logf("%s", out)
}

// TestHelmMatchesKustomize: the chart's default render holds the same
// objects as the kustomize manifests, field for field.
func TestHelmMatchesKustomize(t *testing.T) {
	helm := helmBinary(t)
	rendered := renderChart(t, helm)
	sameObjects(t, kustomized(t), rendered)
	root := repoRoot(t)
	checkCSIDriver(t, rendered)
	checkImagesPinned(t, rendered)
	checkSidecarArgs(t, rendered)
	checkPluginArgs(t, root, rendered)
	checkNodeNoCredentials(t, rendered)
	checkHostPaths(t, rendered, true)
	checkResources(t, rendered)
	checkRBAC(t, rendered, "kube-system")
}

// TestHelmGroupSnapshotsMatchesOverlay: volumeGroupSnapshots=true renders
// what the group-snapshots overlay builds.
func TestHelmGroupSnapshotsMatchesOverlay(t *testing.T) {
	helm := helmBinary(t)
	sameObjects(t, overlayObjects(t), renderChart(t, helm, "controller.sidecars.snapshotter.volumeGroupSnapshots=true"))
}

// sameObjects compares a kustomize build with a chart render, object for
// object and field for field (comparable's exceptions aside).
func sameObjects(t *testing.T, kust, rendered []sidecarargs.Object) {
	t.Helper()
	for _, k := range kust {
		h, err := sidecarargs.Find(rendered, k.Kind, k.Name)
		if err != nil {
			t.Errorf("chart: %v", err)
			continue
		}
		if h.Namespace != k.Namespace {
			t.Errorf("%s: namespace %q in the chart, %q in kustomize", k, h.Namespace, k.Namespace)
		}
		want, got := comparableForm(t, k), comparableForm(t, h)
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs between kustomize (-) and the chart (+):\n%s", k, lineDiff(string(want), string(got)))
		}
	}
	for _, h := range rendered {
		if _, err := sidecarargs.Find(kust, h.Kind, h.Name); err != nil {
			t.Errorf("chart renders %s, which the kustomize manifests lack", h)
		}
	}
}

// TestHelmValues renders the chart with every optional part switched and
// checks the invariants that must hold whatever the values.
func TestHelmValues(t *testing.T) {
	helm := helmBinary(t)
	rendered := renderChart(t, helm,
		"kata.enabled=false",
		"node.hostNetwork=false",
		"metrics.podMonitor.enabled=true",
		"secret.create=false",
		"secret.name=my-cloud",
		"controller.cloudNames={,region-b}",
		"node.additionalTopology.topology\\.kubernetes\\.io/region=region-b",
		"controller.sidecars.provisioner.extraArgs={--kube-api-qps=20}",
		"storageClasses[0].name=csi-sc-cinderplugin",
		"storageClasses[0].default=true",
		"storageClasses[0].parameters.type=ssd",
		"node.attachLimit=40",
		"volumeSnapshotClasses[0].name=csi-cinder-snapclass",
		"volumeSnapshotClasses[0].parameters.type=backup",
	)
	root := repoRoot(t)
	checkSidecarArgs(t, rendered)
	checkPluginArgs(t, root, rendered)
	checkNodeNoCredentials(t, rendered)
	checkHostPaths(t, rendered, false)
	checkResources(t, rendered)
	checkRBAC(t, rendered, "kube-system")
	checkClassParameters(t, rendered)
	if _, err := sidecarargs.Find(rendered, "Secret", "my-cloud"); err == nil {
		t.Error("secret.create=false still renders the Secret")
	}
	for _, want := range [][2]string{{"StorageClass", "csi-sc-cinderplugin"}, {"VolumeSnapshotClass", "csi-cinder-snapclass"}, {"PodMonitor", "cinder-csi"}} {
		if _, err := sidecarargs.Find(rendered, want[0], want[1]); err != nil {
			t.Error(err)
		}
	}
	cm := mustDecode[*corev1.ConfigMap](t, must(sidecarargs.Find(rendered, "ConfigMap", "cinder-csi-node-config")))
	if !strings.Contains(cm.Data["cloud.conf"], "\nnode-volume-attach-limit = 40\n") {
		t.Errorf("node.attachLimit=40 not in the node config:\n%s", cm.Data["cloud.conf"])
	}
	c, n := podSpecs(t, rendered)
	if n.HostNetwork {
		t.Error("node.hostNetwork=false still renders hostNetwork")
	}
	for _, v := range c.Volumes {
		if v.Secret != nil && v.Secret.SecretName != "my-cloud" {
			t.Errorf("controller mounts Secret %s, want my-cloud", v.Secret.SecretName)
		}
	}
	args := sidecarargs.ContainerArgs(c)["cinder-csi-plugin"]
	if !slices.Contains(args, "--cloud-name=") || !slices.Contains(args, "--cloud-name=region-b") {
		t.Errorf("controller args %v lack the cloud names", args)
	}
	nargs := sidecarargs.ContainerArgs(n)["cinder-csi-plugin"]
	if !slices.Contains(nargs, "--additional-topology=topology.kubernetes.io/region=region-b") || !slices.Contains(nargs, "--kata-direct-volumes=false") {
		t.Errorf("node args %v", nargs)
	}
}

// TestKustomizeLoader: our loader (used by the e2e harness without
// kubectl) yields what `kubectl kustomize` builds.
func TestKustomizeLoader(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed; the loader is still checked by the other tests")
	}
	for _, dir := range []string{sidecarargs.ManifestDir, sidecarargs.GroupSnapshotsDir} {
		t.Run(filepath.Base(dir), func(t *testing.T) { compareKustomize(t, kubectl, dir) })
	}
}

func compareKustomize(t *testing.T, kubectl, dir string) {
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(repoRoot(t), dir))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	built, err := sidecarargs.ParseStream("kubectl kustomize", out)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := sidecarargs.LoadKustomization(filepath.Join(repoRoot(t), dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != len(mine) {
		t.Errorf("kubectl kustomize built %d objects, the loader %d", len(built), len(mine))
	}
	for _, b := range built {
		m, err := sidecarargs.Find(mine, b.Kind, b.Name)
		if err != nil {
			t.Error(err)
			continue
		}
		want, _ := sidecarargs.Normalize(b.Data)
		got, _ := sidecarargs.Normalize(m.Data)
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs between kubectl kustomize (-) and the loader (+):\n%s", b, lineDiff(string(want), string(got)))
		}
	}
}

// lineDiff lists the lines only in a (-) or only in b (+), in order
// (longest common subsequence; the documents are a few hundred lines).
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+ %s\n", y[j])
			j++
		default:
			fmt.Fprintf(&out, "- %s\n", x[i])
			i++
		}
	}
	return out.String()
}
