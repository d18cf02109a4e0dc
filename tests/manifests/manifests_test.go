package manifests_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
)

const driverName = "cinder.csi.openstack.org"

func TestCSIDriver(t *testing.T) {
	checkCSIDriver(t, kustomized(t))
}

func checkCSIDriver(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	o, err := sidecarargs.Find(objs, "CSIDriver", driverName)
	if err != nil {
		t.Fatal(err)
	}
	d := mustDecode[*storagev1.CSIDriver](t, o)
	s := d.Spec
	if s.AttachRequired == nil || !*s.AttachRequired {
		t.Error("attachRequired must be true")
	}
	if s.PodInfoOnMount == nil || !*s.PodInfoOnMount {
		t.Error("podInfoOnMount must be true (Kata direct volumes need the pod)")
	}
	if s.FSGroupPolicy == nil || *s.FSGroupPolicy != storagev1.FileFSGroupPolicy {
		t.Errorf("fsGroupPolicy = %v, want File", s.FSGroupPolicy)
	}
	if !slices.Equal(s.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}) {
		t.Errorf("volumeLifecycleModes = %v, want [Persistent] only", s.VolumeLifecycleModes)
	}
	if s.RequiresRepublish == nil || *s.RequiresRepublish {
		t.Error("requiresRepublish must be set to false")
	}
}

func TestImagesPinned(t *testing.T) {
	checkImagesPinned(t, kustomized(t))
}

func checkImagesPinned(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	c, n := podSpecs(t, objs)
	for _, spec := range []*corev1.PodSpec{c, n} {
		for _, ctr := range spec.Containers {
			repo, tag := sidecarargs.SplitImage(ctr.Image)
			if tag == "" || tag == "latest" {
				t.Errorf("container %s: image %q is not pinned to a version", ctr.Name, ctr.Image)
			}
			if ctr.Name == "cinder-csi-plugin" {
				continue
			}
			sc, ok := sidecarargs.ByContainer(ctr.Name)
			if !ok {
				t.Errorf("container %s: not a known sidecar", ctr.Name)
				continue
			}
			if repo != sc.Image || tag != sc.Version {
				t.Errorf("container %s: image %s, want %s (the version whose flags are checked)", ctr.Name, ctr.Image, sc.ImageRef())
			}
		}
	}
}

func TestSidecarArgs(t *testing.T) {
	checkSidecarArgs(t, kustomized(t))
}

// checkSidecarArgs validates every sidecar's args (and the registrar's
// probe command) against its flags at the pinned version.
func checkSidecarArgs(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	c, n := podSpecs(t, objs)
	for _, spec := range []*corev1.PodSpec{c, n} {
		for _, ctr := range spec.Containers {
			sc, ok := sidecarargs.ByContainer(ctr.Name)
			if !ok {
				continue
			}
			if len(ctr.Command) > 0 {
				t.Errorf("%s: command %v overrides the image entrypoint", ctr.Name, ctr.Command)
			}
			if err := sc.Validate(ctr.Args); err != nil {
				t.Error(err)
			}
			if addr, _ := sidecarargs.Lookup(ctr.Args, "csi-address"); !strings.HasSuffix(addr, "/csi.sock") {
				t.Errorf("%s: --csi-address=%q does not point at the plugin socket", ctr.Name, addr)
			}
			if p := ctr.LivenessProbe; p != nil && p.Exec != nil {
				cmd := p.Exec.Command
				if len(cmd) == 0 || cmd[0] != "/csi-node-driver-registrar" {
					t.Errorf("%s: probe command %v", ctr.Name, cmd)
				} else if err := sc.Validate(cmd[1:]); err != nil {
					t.Errorf("%s liveness probe: %v", ctr.Name, err)
				}
			}
		}
	}
	want := map[string][]string{
		"csi-provisioner": {"--extra-create-metadata", "--default-fstype=ext4", "--feature-gates=Topology=true", "--leader-election=true"},
		"csi-attacher":    {"--leader-election=true"},
		"csi-snapshotter": {"--extra-create-metadata", "--leader-election=true"},
		"csi-resizer":     {"--leader-election=true"},
	}
	args := sidecarargs.ContainerArgs(c)
	for name, must := range want {
		if _, ok := args[name]; !ok {
			t.Errorf("controller lacks the %s sidecar", name)
			continue
		}
		for _, m := range must {
			if !slices.Contains(args[name], m) {
				t.Errorf("%s: missing %s", name, m)
			}
		}
		_, threads := sidecarargs.Lookup(args[name], "worker-threads")
		_, workers := sidecarargs.Lookup(args[name], "workers")
		if !threads && !workers {
			t.Errorf("%s: no worker count set", name)
		}
		if _, ok := sidecarargs.Lookup(args[name], "timeout"); !ok {
			t.Errorf("%s: no --timeout", name)
		}
	}
}

// TestGroupSnapshotsOverlay: the overlay is the base with exactly one
// more csi-snapshotter arg, the CSIVolumeGroupSnapshot gate, which the
// base leaves off (gated without the CRDs, the sidecar serves no
// VolumeSnapshot at all).
func TestGroupSnapshotsOverlay(t *testing.T) {
	const gate = "--feature-gates=CSIVolumeGroupSnapshot=true"
	base, err := sidecarargs.SidecarArgs(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	over, err := sidecarargs.WorkloadArgs(filepath.Join(repoRoot(t), sidecarargs.GroupSnapshotsDir), sidecarargs.Controller, sidecarargs.Node)
	if err != nil {
		t.Fatal(err)
	}
	checkSidecarArgs(t, overlayObjects(t))
	for name, args := range base {
		want := args
		if name == "controller/csi-snapshotter" {
			if slices.Contains(args, gate) {
				t.Errorf("the base manifests turn the group snapshot gate on")
			}
			want = append(slices.Clone(args), gate)
		}
		if !slices.Equal(over[name], want) {
			t.Errorf("%s: overlay args %v, want %v", name, over[name], want)
		}
	}
	if len(over) != len(base) {
		t.Errorf("overlay has %d containers, the base %d", len(over), len(base))
	}
}

func overlayObjects(t *testing.T) []sidecarargs.Object {
	t.Helper()
	objs, err := sidecarargs.LoadKustomization(filepath.Join(repoRoot(t), sidecarargs.GroupSnapshotsDir))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestHarnessHelper: the e2e harness gets every sidecar's args, and
// Override rewrites socket and leader election without losing the rest.
func TestHarnessHelper(t *testing.T) {
	all, err := sidecarargs.SidecarArgs(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"controller/csi-provisioner", "controller/csi-attacher", "controller/csi-snapshotter",
		"controller/csi-resizer", "controller/liveness-probe", "node/node-driver-registrar", "node/liveness-probe"} {
		if len(all[k]) == 0 {
			t.Errorf("no args for %s", k)
		}
	}
	prov := all["controller/csi-provisioner"]
	got := sidecarargs.Override(prov, map[string]string{
		"csi-address": "/tmp/x.sock", "leader-election": "false", "kubeconfig": "/tmp/kc",
	}, "http-endpoint")
	if v, _ := sidecarargs.Lookup(got, "csi-address"); v != "/tmp/x.sock" {
		t.Errorf("csi-address = %q", v)
	}
	if v, _ := sidecarargs.Lookup(got, "leader-election"); v != "false" {
		t.Errorf("leader-election = %q", v)
	}
	if _, ok := sidecarargs.Lookup(got, "http-endpoint"); ok {
		t.Error("http-endpoint not dropped")
	}
	if !slices.Contains(got, "--extra-create-metadata") || !slices.Contains(got, "--kubeconfig=/tmp/kc") {
		t.Errorf("override lost or did not add args: %v", got)
	}
	sc, _ := sidecarargs.ByContainer("csi-provisioner")
	if err := sc.Validate(got); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"csi-provisioner", "csi-attacher", "csi-snapshotter", "csi-resizer"} {
		h := sidecarargs.ForHarness(all["controller/"+name], "/tmp/rig/csi.sock", "/tmp/rig/kubeconfig")
		sc, _ := sidecarargs.ByContainer(name)
		if err := sc.Validate(h); err != nil {
			t.Errorf("ForHarness(%s): %v", name, err)
		}
		if v, _ := sidecarargs.Lookup(h, "leader-election"); v != "false" {
			t.Errorf("ForHarness(%s) keeps leader election: %v", name, h)
		}
	}
}

func TestPluginArgs(t *testing.T) {
	checkPluginArgs(t, repoRoot(t), kustomized(t))
}

func checkPluginArgs(t *testing.T, root string, objs []sidecarargs.Object) {
	t.Helper()
	known := pluginFlags(t, root)
	c, n := podSpecs(t, objs)
	plugin := func(spec *corev1.PodSpec) corev1.Container {
		for _, ctr := range spec.Containers {
			if ctr.Name == "cinder-csi-plugin" {
				return ctr
			}
		}
		t.Fatal("no cinder-csi-plugin container")
		return corev1.Container{}
	}
	cp, np := plugin(c), plugin(n)
	for _, ctr := range []corev1.Container{cp, np} {
		if _, err := sidecarargs.Parse(ctr.Args, known); err != nil {
			t.Errorf("plugin args %v: %v", ctr.Args, err)
		}
		if v, _ := sidecarargs.Lookup(ctr.Args, "endpoint"); v != "unix:///csi/csi.sock" {
			t.Errorf("--endpoint=%q", v)
		}
	}
	expect := func(args []string, name, want string) {
		t.Helper()
		if v, ok := sidecarargs.Lookup(args, name); !ok || v != want {
			t.Errorf("--%s=%q (set %v), want %q", name, v, ok, want)
		}
	}
	expect(cp.Args, "provide-controller-service", "true")
	expect(cp.Args, "provide-node-service", "false")
	expect(np.Args, "provide-controller-service", "false")
	expect(np.Args, "provide-node-service", "true")
	expect(cp.Args, "cloud-config", "/etc/config/cloud.conf")
	ok := false
	for _, e := range np.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			ok = true
		}
	}
	if !ok {
		t.Error("node plugin lacks NODE_NAME from spec.nodeName")
	}
	if !mountsSecret(c, cp, "/etc/config") {
		t.Error("controller plugin does not mount the cloud.conf Secret at /etc/config")
	}
}

// mountsSecret reports whether ctr mounts a Secret volume at path.
func mountsSecret(spec *corev1.PodSpec, ctr corev1.Container, path string) bool {
	for _, m := range ctr.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return true
			}
		}
	}
	return false
}

func TestNodeHasNoCredentials(t *testing.T) {
	checkNodeNoCredentials(t, kustomized(t))
}

func checkNodeNoCredentials(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	_, n := podSpecs(t, objs)
	for _, v := range n.Volumes {
		if v.Secret != nil {
			t.Errorf("node volume %s is a Secret", v.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					t.Errorf("node volume %s projects a Secret", v.Name)
				}
			}
		}
		if v.CSI != nil && v.CSI.NodePublishSecretRef != nil {
			t.Errorf("node volume %s references a Secret", v.Name)
		}
		if v.ConfigMap != nil {
			cm, err := sidecarargs.Find(objs, "ConfigMap", v.ConfigMap.Name)
			if err != nil {
				t.Fatal(err)
			}
			data := mustDecode[*corev1.ConfigMap](t, cm).Data["cloud.conf"]
			// The plugin must read it as is.
			path := filepath.Join(t.TempDir(), "cloud.conf")
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := config.Load(path); err != nil {
				t.Errorf("node ConfigMap %s: the plugin cannot load it: %v", cm.Name, err)
			}
			lower := strings.ToLower(data)
			for _, bad := range []string{"[global", "password", "secret", "auth-url", "token"} {
				if strings.Contains(lower, bad) {
					t.Errorf("node ConfigMap %s contains %q: credentials belong to the controller only", cm.Name, bad)
				}
			}
		}
	}
	for _, ctr := range append(slices.Clone(n.InitContainers), n.Containers...) {
		for _, e := range ctr.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("node container %s: env %s from a Secret", ctr.Name, e.Name)
			}
		}
		for _, e := range ctr.EnvFrom {
			if e.SecretRef != nil {
				t.Errorf("node container %s: envFrom a Secret", ctr.Name)
			}
		}
	}
}

// allowedNodeHostPaths is the whole host surface the node plugin needs.
var allowedNodeHostPaths = map[string]bool{
	"/var/lib/kubelet": true,
	"/var/lib/kubelet/plugins/cinder.csi.openstack.org": true,
	"/var/lib/kubelet/plugins_registry":                 true,
	"/dev":                                              true,
	"/run/udev":                                         true,
	"/run/kata-containers/shared/direct-volumes":        true,
	"/run/vc/sbs":                                       true,
	"/run/kata":                                         true,
}

func TestHostPaths(t *testing.T) {
	checkHostPaths(t, kustomized(t), true)
}

func checkHostPaths(t *testing.T, objs []sidecarargs.Object, kata bool) {
	t.Helper()
	c, n := podSpecs(t, objs)
	for _, v := range c.Volumes {
		if v.HostPath != nil {
			t.Errorf("controller mounts hostPath %s", v.HostPath.Path)
		}
	}
	if c.HostNetwork {
		t.Error("controller uses hostNetwork; it needs none")
	}
	seen := map[string]bool{}
	for _, v := range n.Volumes {
		if v.HostPath == nil {
			continue
		}
		if !allowedNodeHostPaths[v.HostPath.Path] {
			t.Errorf("node hostPath %s is not in the allowed set", v.HostPath.Path)
		}
		seen[v.HostPath.Path] = true
	}
	for p := range allowedNodeHostPaths {
		if !seen[p] && (kata || !strings.Contains(p, "kata") && !strings.HasPrefix(p, "/run/vc")) {
			t.Errorf("node lacks hostPath %s", p)
		}
	}
	// Bidirectional propagation only on the kubelet directory, and only
	// in the privileged plugin container.
	for _, ctr := range n.Containers {
		for _, m := range ctr.VolumeMounts {
			if m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
				continue
			}
			if m.MountPath != "/var/lib/kubelet" || ctr.Name != "cinder-csi-plugin" {
				t.Errorf("%s: Bidirectional mount at %s", ctr.Name, m.MountPath)
			}
			if ctr.SecurityContext == nil || ctr.SecurityContext.Privileged == nil || !*ctr.SecurityContext.Privileged {
				t.Errorf("%s: Bidirectional propagation needs a privileged container", ctr.Name)
			}
		}
	}
}

func TestResources(t *testing.T) {
	checkResources(t, kustomized(t))
}

func checkResources(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	c, n := podSpecs(t, objs)
	for _, spec := range []*corev1.PodSpec{c, n} {
		for _, ctr := range spec.Containers {
			r := ctr.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() {
				t.Errorf("%s: cpu and memory requests must be set", ctr.Name)
			}
			if r.Limits.Memory().IsZero() {
				t.Errorf("%s: memory limit must be set", ctr.Name)
			}
			if r.Limits.Memory().Cmp(*r.Requests.Memory()) < 0 {
				t.Errorf("%s: memory limit below request", ctr.Name)
			}
		}
	}
}

func TestControllerShape(t *testing.T) {
	checkControllerShape(t, kustomized(t))
}

func checkControllerShape(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	d := mustDecode[*appsv1.Deployment](t, must(sidecarargs.Find(objs, "Deployment", sidecarargs.Controller)))
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("controller replicas = %v, want 2", d.Spec.Replicas)
	}
	spec := d.Spec.Template.Spec
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("controller priorityClassName %q", spec.PriorityClassName)
	}
	if spec.ServiceAccountName != "csi-cinder-controller-sa" {
		t.Errorf("controller serviceAccountName %q", spec.ServiceAccountName)
	}
	ports := map[string]int32{}
	for _, ctr := range spec.Containers {
		for _, p := range ctr.Ports {
			if _, dup := ports[p.Name]; dup {
				t.Errorf("port name %s used twice", p.Name)
			}
			ports[p.Name] = p.ContainerPort
		}
		if v, ok := sidecarargs.Lookup(ctr.Args, "http-endpoint"); ok && ctr.Name != "liveness-probe" {
			_, port, _ := strings.Cut(v, ":")
			found := false
			for _, p := range ctr.Ports {
				found = found || port == strconv.Itoa(int(p.ContainerPort))
			}
			if !found {
				t.Errorf("%s: --http-endpoint=%s has no matching container port", ctr.Name, v)
			}
		}
	}
	ds := mustDecode[*appsv1.DaemonSet](t, must(sidecarargs.Find(objs, "DaemonSet", sidecarargs.Node)))
	nspec := ds.Spec.Template.Spec
	if nspec.PriorityClassName != "system-node-critical" {
		t.Errorf("node priorityClassName %q", nspec.PriorityClassName)
	}
	tolerateAll := false
	for _, tol := range nspec.Tolerations {
		tolerateAll = tolerateAll || (tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == "")
	}
	if !tolerateAll {
		t.Error("node DaemonSet must tolerate every taint")
	}
	if nspec.HostNetwork && nspec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Error("hostNetwork without dnsPolicy ClusterFirstWithHostNet")
	}
	pdb := mustDecode[*policyv1.PodDisruptionBudget](t, must(sidecarargs.Find(objs, "PodDisruptionBudget", sidecarargs.Controller)))
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("PDB selector %s=%s does not match the controller pods", k, v)
		}
	}
	svc := mustDecode[*corev1.Service](t, must(sidecarargs.Find(objs, "Service", "csi-cinder-controllerplugin-metrics")))
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("metrics Service port %s targets %s, which no container declares", p.Name, p.TargetPort.String())
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSampleCloudConfig: the sample Secret is a cloud.conf the controller
// accepts once the placeholders are filled in.
func TestSampleCloudConfig(t *testing.T) {
	sec := mustDecode[*corev1.Secret](t, must(sidecarargs.Find(kustomized(t), "Secret", "cloud-config")))
	data, ok := sec.StringData["cloud.conf"]
	if !ok {
		t.Fatal("Secret cloud-config has no cloud.conf key")
	}
	path := filepath.Join(t.TempDir(), "cloud.conf")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateClouds(); err != nil {
		t.Error(err)
	}
}
