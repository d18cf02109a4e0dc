package manifests_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// peerPodControllerNeeds is what pkg/peerpod's reconciler calls (list pods
// and PVs, list PeerPod CRs, create Events).
var peerPodControllerNeeds = []need{
	{"", "pods", []string{"get", "list"}},
	{"", "persistentvolumes", []string{"list"}},
	{"", "events", []string{"create"}},
	{"confidentialcontainers.org", "peerpods", []string{"list"}},
}

// peerPodNodeNeeds: the node's RuntimeClass gate GETs the published pod.
var peerPodNodeNeeds = []need{{"", "pods", []string{"get"}}}

// peerPodHostPaths is the peer-pod node's whole host surface: no /dev, no
// kubelet root beyond its pod directories.
var peerPodHostPaths = map[string]bool{
	"/var/lib/kubelet/plugins/cinder-peerpod.csi.openstack.org": true,
	"/var/lib/kubelet/plugins_registry":                         true,
	"/var/lib/kubelet/pods":                                     true,
	"/run/kata-containers/shared/direct-volumes":                true,
}

// peerPodObjects is the Cinder base plus the peer-pod directory, as they
// are installed (the peer-pod objects reuse the base's Secret, node
// ConfigMap and sidecar roles).
func peerPodObjects(t *testing.T) []sidecarargs.Object {
	t.Helper()
	pp, err := sidecarargs.LoadKustomization(filepath.Join(repoRoot(t), sidecarargs.PeerPodDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pp {
		if o.Namespace != "" && o.Namespace != "kube-system" {
			t.Errorf("%s in namespace %q", o, o.Namespace)
		}
	}
	return append(kustomized(t), pp...)
}

func TestPeerPodManifests(t *testing.T) {
	checkPeerPod(t, peerPodObjects(t))
}

// TestHelmPeerPods: peerPods.enabled=true renders the base plus the
// peer-pod directory, field for field.
func TestHelmPeerPods(t *testing.T) {
	helm := helmBinary(t)
	rendered := renderChart(t, helm, "peerPods.enabled=true")
	sameObjects(t, peerPodObjects(t), rendered)
	checkPeerPod(t, rendered)
}

// checkPeerPod: the CSIDriver (no attach, pod info for the node's gate),
// a single-replica controller without csi-attacher whose plugin runs
// --peer-pods, an unprivileged node with no Secret and only its host
// paths, both with the same RuntimeClass list, and the RBAC they call.
func checkPeerPod(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	d := mustDecode[*storagev1.CSIDriver](t, must(sidecarargs.Find(objs, "CSIDriver", peerPodDriverName)))
	if d.Spec.AttachRequired == nil || *d.Spec.AttachRequired || d.Spec.PodInfoOnMount == nil || !*d.Spec.PodInfoOnMount {
		t.Errorf("CSIDriver %s: attachRequired must be false and podInfoOnMount true", d.Name)
	}
	dep := mustDecode[*appsv1.Deployment](t, must(sidecarargs.Find(objs, "Deployment", sidecarargs.PeerPodController)))
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%s: the reconciler does not elect a leader; want 1 replica and Recreate, got %v %s", dep.Name, dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	c, n, err := sidecarargs.PodSpecsNamed(objs, sidecarargs.PeerPodController, sidecarargs.PeerPodNode)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ctr := range c.Containers {
		names = append(names, ctr.Name)
		if sc, ok := sidecarargs.ByContainer(ctr.Name); ok {
			if err := sc.Validate(ctr.Args); err != nil {
				t.Errorf("%s: %v", ctr.Name, err)
			}
		}
	}
	slices.Sort(names)
	if want := []string{"cinder-csi-plugin", "csi-provisioner", "csi-resizer", "csi-snapshotter", "liveness-probe"}; !slices.Equal(names, want) {
		t.Errorf("controller containers %v, want %v (no csi-attacher: attachRequired false)", names, want)
	}
	known := pluginFlags(t, repoRoot(t))
	cargs, nargs := sidecarargs.ContainerArgs(c)["cinder-csi-plugin"], sidecarargs.ContainerArgs(n)["cinder-csi-plugin"]
	for _, args := range [][]string{cargs, nargs} {
		if _, err := sidecarargs.Parse(args, known); err != nil {
			t.Errorf("plugin args %v: %v", args, err)
		}
		if !slices.Contains(args, "--peer-pods") {
			t.Errorf("plugin args %v lack --peer-pods", args)
		}
	}
	classes := func(args []string) (out []string) {
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--peer-pod-runtime-class="); ok {
				out = append(out, v)
			}
		}
		return out
	}
	if !slices.Equal(classes(cargs), classes(nargs)) {
		t.Errorf("controller RuntimeClasses %v, node %v: the node's gate and the reconciler must agree", classes(cargs), classes(nargs))
	}
	checkPeerPodNode(t, n)
	for _, spec := range []*corev1.PodSpec{c, n} {
		for _, ctr := range spec.Containers {
			if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: cpu request and memory limit must be set", ctr.Name)
			}
		}
	}
	checkRBACOf(t, objs, "kube-system", c, n, peerPodControllerNeeds, peerPodNodeNeeds)
}

// checkPeerPodNode: nothing is attached or mounted on the worker, so no
// privilege, no propagation, no Secret and only peerPodHostPaths.
func checkPeerPodNode(t *testing.T, n *corev1.PodSpec) {
	t.Helper()
	for _, v := range n.Volumes {
		if v.Secret != nil || v.Projected != nil {
			t.Errorf("peer-pod node volume %s carries a Secret or projection", v.Name)
		}
		if v.HostPath != nil && !peerPodHostPaths[v.HostPath.Path] {
			t.Errorf("peer-pod node hostPath %s is not in the allowed set", v.HostPath.Path)
		}
	}
	for _, ctr := range n.Containers {
		if sc := ctr.SecurityContext; sc == nil || (sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("peer-pod node container %s is privileged or has no securityContext", ctr.Name)
		}
		for _, m := range ctr.VolumeMounts {
			if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
				t.Errorf("%s: %s propagation at %s; the peer-pod node mounts nothing", ctr.Name, *m.MountPropagation, m.MountPath)
			}
		}
		for _, a := range ctr.Args {
			if v, ok := strings.CutPrefix(a, "--kubelet-registration-path="); ok && !strings.Contains(v, peerPodDriverName) {
				t.Errorf("registrar registers %s, not the peer-pod driver's socket", v)
			}
		}
	}
}
