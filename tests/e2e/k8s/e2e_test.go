package k8s

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

const (
	nodeName    = "node-1"
	ns          = "default"
	topologyKey = "topology.cinder.csi.openstack.org/zone"
	zone        = "nova"
	stepTimeout = 2 * time.Minute
)

var snapshotGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}

// env is one run: the rig, the driver, the harness's kubelet, and what
// the flows created, for teardown.
type env struct {
	t       *testing.T
	ctx     context.Context
	root    string
	dir     string
	p       *procs
	cp      *controlPlane
	a       *applier
	d       *driver
	k       *kubelet
	mounted map[string]*mounted // by claim name
	// The Manila driver (nil until its flows start), its nodes, and what
	// they mounted, by node and claim ("node-2/claim").
	m        *driver
	mnodes   []*manilaNode
	mmounted map[string]*mounted
	rm       *realManila // the real Manila's state (E2E_K8S_CLOUD=openstack)
	pods     []string
	times    []timing
}

type timing struct {
	step, detail string
	took         time.Duration
	ok           bool
}

// step runs one timed step; a failure ends the test (later steps build on
// earlier ones).
func (e *env) step(name string, f func() (string, error)) {
	e.t.Helper()
	t0 := time.Now()
	detail, err := f()
	took := time.Since(t0)
	if err != nil {
		e.times = append(e.times, timing{step: name, detail: err.Error(), took: took})
		e.t.Fatalf("step %s failed after %.1fs: %v", name, took.Seconds(), err)
	}
	e.times = append(e.times, timing{step: name, detail: detail, took: took, ok: true})
	e.t.Logf("step %-22s ok %6.2fs  %s", name, took.Seconds(), detail)
}

// skip records a step the current mode cannot run, with the reason.
func (e *env) skip(name, why string) {
	e.times = append(e.times, timing{step: name, detail: "SKIP: " + why, ok: true})
	e.t.Logf("step %-22s skipped: %s", name, why)
}

func (e *env) table() string {
	var b strings.Builder
	for _, x := range e.times {
		status := "ok"
		if !x.ok {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%-24s %-4s %7.2fs  %s\n", x.step, status, x.took.Seconds(), x.detail)
	}
	return b.String()
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// TestKubernetes drives flows 1-9 of issue 12 through a real
// kube-apiserver, kube-controller-manager and the CSI sidecars.
func TestKubernetes(t *testing.T) {
	if os.Getenv("E2E_K8S") != "1" {
		t.Skip("needs E2E_K8S=1, root and the k8s rig binaries: run `make e2e-k8s`")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the emulator hot-plugs loop devices and the node plugin mounts them")
	}
	if realCloudMode() {
		// Skips unless hack/e2e-openstack.sh prepared the rig (project,
		// member, node servers, cloud.conf): before anything starts.
		rig.Require(t)
	}
	root, err := sidecarargs.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	cache := getenv("K8S_RIG_CACHE", filepath.Join(home, ".cache", "k8s-rig"))
	rigBin := filepath.Join(cache, "bin")
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "csi-provisioner", "csi-attacher", "csi-snapshotter", "snapshot-controller", "csi-resizer"} {
		if _, err := os.Stat(filepath.Join(rigBin, b)); err != nil {
			t.Skipf("k8s rig binary %s missing in %s: run tools/k8s-rig/build.sh (make e2e-k8s does)", b, rigBin)
		}
	}
	binDir := getenv("E2E_K8S_BIN", filepath.Join(root, "bin"))
	bins := []string{"cinder-csi-plugin", "manila-csi-plugin", "openstack-emulator"}
	if realCloudMode() {
		bins = bins[:2]
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			t.Fatalf("%s missing in %s: run `make build` (make e2e-k8s does)", b, binDir)
		}
	}
	// hack/e2e-k8s.sh passes its own dir so it can clean up after a
	// crashed test binary.
	dir := os.Getenv("E2E_K8S_DIR")
	if dir == "" {
		dir, err = os.MkdirTemp("", "cinder-csi-e2e-k8s-")
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := newProcs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e := &env{t: t, ctx: ctx, root: root, dir: dir, p: p, mounted: map[string]*mounted{}, mmounted: map[string]*mounted{}}
	t.Cleanup(func() { e.teardownAll() })

	e.step("up control plane", func() (string, error) {
		cp, err := startControlPlane(ctx, p, rigBin, filepath.Join(cache, "crd"), dir)
		if err != nil {
			return "", err
		}
		e.cp = cp
		e.a, err = newApplier(cp)
		return "etcd, kube-apiserver, kube-controller-manager; VolumeSnapshot and VolumeGroupSnapshot CRDs established; default ServiceAccount", err
	})
	e.step("manifests dry-run", e.manifestsDryRun)
	e.step("up driver", func() (string, error) { return e.upDriver(rigBin, binDir) })
	e.step("1 node registration", e.registerNode)
	e.step("2 provision (WFFC)", e.provision)
	e.step("3 attach + stage/publish", e.attach)
	e.step("4 snapshot", e.snapshot)
	e.step("4 restore + read back", e.restore)
	e.step("5 clone + read back", e.clone)
	e.step("6 resize (online, xfs)", e.resize)
	e.step("6 resize (offline, ext4)", e.resizeOffline)
	e.step("9 RWOP", e.rwop)
	e.step("8 bad parameter", e.badParameter)
	e.groupFlows()
	if realCloudMode() {
		// A real cloud cannot be told to fail: the emulator's fault
		// injection has no counterpart on the rig.
		e.skip("8 attach under 503s", "real cloud: no fault injection (emulator only)")
	} else {
		e.step("8 attach under 503s", e.attachUnderFaults)
	}
	e.peerPodFlows()
	e.step("7 teardown", e.teardownFlow)
	e.manilaFlows(rigBin, binDir)
}

// ------------------------------------------------------------------ setup

func (e *env) manifestsDryRun() (string, error) {
	n := 0
	for _, dir := range []string{sidecarargs.ManifestDir, sidecarargs.GroupSnapshotsDir, sidecarargs.PeerPodDir} {
		k, err := dryRunManifests(e.ctx, e.a, filepath.Join(e.root, dir))
		if err != nil {
			return "", fmt.Errorf("%s: %w", dir, err)
		}
		n += k
	}
	// The examples too: StorageClasses, snapshot classes, PVCs and pods.
	files, err := sidecarargs.YAMLFiles(filepath.Join(e.root, "examples"))
	if err != nil {
		return "", err
	}
	// Pods naming a RuntimeClass are rejected by admission unless it
	// exists, and a dry-run persists nothing: the examples' RuntimeClasses
	// are applied for real first (inert without a kubelet).
	perFile := map[string][]*unstructured.Unstructured{}
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			return "", err
		}
		perFile[f] = objs
		for _, o := range objs {
			if o.GetKind() == "RuntimeClass" {
				if err := e.a.apply(e.ctx, "", false, o); err != nil {
					return "", fmt.Errorf("%s: %w", strings.TrimPrefix(f, e.root+"/"), err)
				}
			}
		}
	}
	m := 0
	var unserved []string
	for _, f := range files {
		for _, o := range perFile[f] {
			err := e.a.apply(e.ctx, ns, true, o)
			// A kind this apiserver does not serve (VolumeAttributesClass
			// is storage.k8s.io/v1 from Kubernetes 1.34; the rig runs
			// 1.33) is reported, not failed.
			if meta.IsNoMatchError(err) {
				unserved = append(unserved, o.GetKind()+"/"+o.GetName())
				continue
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", strings.TrimPrefix(f, e.root+"/"), err)
			}
			m++
		}
	}
	skipped := ""
	if len(unserved) > 0 {
		skipped = fmt.Sprintf(" (%d not served by this apiserver: %s)", len(unserved), strings.Join(unserved, ", "))
	}
	// The CSIDriver object for real: attachRequired makes the
	// attach/detach controller create VolumeAttachments.
	drv, err := decodeFile(filepath.Join(e.root, sidecarargs.ManifestDir, "csi-cinder-driver.yaml"))
	if err != nil {
		return "", err
	}
	if err := e.a.apply(e.ctx, "", false, drv...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d manifest objects (base, group-snapshots overlay, peer-pod driver) and %d example objects accepted by server-side dry-run%s; CSIDriver applied", n, m, skipped), nil
}

func (e *env) upDriver(rigBin, binDir string) (string, error) {
	// kubelet has registered the Node before the DaemonSet's pod starts.
	if err := createNode(e.ctx, e.cp.client, nodeName); err != nil {
		return "", err
	}
	var d *driver
	var err error
	what := "emulator"
	if realCloudMode() {
		d, err = startRealCloud(e.ctx, e.t, e.dir)
		if d != nil {
			what = fmt.Sprintf("real OpenStack (project %s as member %s, node server %s, devices under %s, metadata %s)",
				d.real.env.Project, d.real.env.User, d.real.env.Node1, d.devRoot, d.metadataURL)
		}
	} else {
		d, err = startEmulator(e.ctx, e.p, binDir, e.dir, nodeName)
	}
	if err != nil {
		return "", err
	}
	e.d = d
	if err := d.startPlugin(e.ctx, e.p, binDir, e.root, e.dir, e.cp.kubeconfig, nodeName); err != nil {
		return "", err
	}
	if err := d.startSidecars(e.ctx, e.p, rigBin, e.root, e.cp.kubeconfig); err != nil {
		return "", err
	}
	k, err := newKubelet(e.ctx, e.cp.client, driverName, d.nodeSock, d.kubeletDir, nodeName)
	if err != nil {
		return "", err
	}
	e.k = k
	var parts []string
	for name, o := range d.overrides {
		parts = append(parts, name+": "+strings.Join(o, " "))
	}
	slices.Sort(parts)
	e.t.Logf("arguments changed from the manifests:\n  %s", strings.Join(parts, "\n  "))
	return fmt.Sprintf("%s, plugin controller+node, %d sidecars + snapshot-controller; every liveness URL answers 200", what, len(controllerSidecars)), nil
}

// ------------------------------------------------------------------ helpers

// applyExample applies an examples/ file, pinning pods to our node (no
// kube-scheduler here) and letting edit change any object first.
func (e *env) applyExample(rel string, edit func(u *unstructured.Unstructured)) ([]*unstructured.Unstructured, error) {
	objs, err := decodeFile(filepath.Join(e.root, "examples", rel))
	if err != nil {
		return nil, err
	}
	return e.applyObjects(objs, edit)
}

func (e *env) applyObjects(objs []*unstructured.Unstructured, edit func(u *unstructured.Unstructured)) ([]*unstructured.Unstructured, error) {
	for _, u := range objs {
		if u.GetKind() == "Pod" {
			_ = unstructured.SetNestedField(u.Object, nodeName, "spec", "nodeName")
			_ = unstructured.SetNestedField(u.Object, false, "spec", "automountServiceAccountToken")
		}
		if edit != nil {
			edit(u)
		}
		if u.GetKind() == "Pod" {
			e.pods = append(e.pods, u.GetName())
		}
	}
	return e.a.applyObjects(e.ctx, ns, false, objs...)
}

func podOf(objs []*unstructured.Unstructured) (*corev1.Pod, error) {
	for _, u := range objs {
		if u.GetKind() == "Pod" {
			var pod corev1.Pod
			err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pod)
			return &pod, err
		}
	}
	return nil, fmt.Errorf("no Pod in the example")
}

// consume applies an example holding a PVC and a pod, plays the scheduler
// (selected-node on the claim), waits for bind and attach, and mounts the
// volume as kubelet would.
func (e *env) consume(rel, claim string, edit func(u *unstructured.Unstructured)) (*mounted, error) {
	objs, err := e.applyExample(rel, edit)
	if err != nil {
		return nil, err
	}
	pod, err := podOf(objs)
	if err != nil {
		return nil, err
	}
	if err := selectNode(e.ctx, e.cp.client, ns, claim, nodeName); err != nil {
		return nil, err
	}
	m, err := e.k.mount(e.ctx, pod, claim, stepTimeout)
	if err != nil {
		return nil, err
	}
	e.mounted[claim] = m
	return m, nil
}

const payload = "written through NodePublish by the e2e-k8s harness\n"

func writeFile(path, data string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readBack(m *mounted) error {
	got, err := os.ReadFile(filepath.Join(m.target, "hello.txt"))
	if err != nil {
		return err
	}
	if string(got) != payload {
		return fmt.Errorf("read %q, want %q", got, payload)
	}
	return nil
}

// waitReadyToUse polls a VolumeSnapshot or VolumeGroupSnapshot until its
// status says readyToUse; a status error ends the wait with its message.
func (e *env) waitReadyToUse(gvr schema.GroupVersionResource, name string) error {
	return poll(e.ctx, stepTimeout, gvr.Resource+" "+name+" readyToUse", func(ctx context.Context) (bool, error) {
		u, err := e.a.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if msg, ok, _ := unstructured.NestedString(u.Object, "status", "error", "message"); ok {
			return false, fmt.Errorf("%s error: %s", gvr.Resource, msg)
		}
		ready, _, _ := unstructured.NestedBool(u.Object, "status", "readyToUse")
		return ready, nil
	})
}

// ------------------------------------------------------------------ flows

func (e *env) registerNode() (string, error) {
	if err := e.k.register(e.ctx); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	if len(st.Servers) == 0 || st.Servers[0].ID != e.k.nodeID {
		return "", fmt.Errorf("NodeGetInfo node id %q is not the emulator's server %v", e.k.nodeID, st.Servers)
	}
	if e.k.topology[topologyKey] != zone {
		return "", fmt.Errorf("NodeGetInfo topology %v, want %s=%s", e.k.topology, topologyKey, zone)
	}
	return fmt.Sprintf("Node+CSINode %s: nodeID %s, topology %v, allocatable %d", nodeName, e.k.nodeID, e.k.topology, e.k.maxVolumes), nil
}

func (e *env) provision() (string, error) {
	if _, err := e.applyExample("storageclass.yaml", nil); err != nil {
		return "", err
	}
	objs, err := e.applyExample("nginx.yaml", nil)
	if err != nil {
		return "", err
	}
	if _, err := podOf(objs); err != nil {
		return "", err
	}
	const claim = "csi-pvc-cinderplugin"
	if err := selectNode(e.ctx, e.cp.client, ns, claim, nodeName); err != nil {
		return "", err
	}
	_, pv, err := boundClaim(e.ctx, e.cp.client, ns, claim, stepTimeout)
	if err != nil {
		return "", err
	}
	// Node affinity from our topology.
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) != 1 {
		return "", fmt.Errorf("PV %s has no node affinity: %+v", pv.Name, na)
	}
	exprs := na.Required.NodeSelectorTerms[0].MatchExpressions
	if len(exprs) != 1 || exprs[0].Key != topologyKey || len(exprs[0].Values) != 1 || exprs[0].Values[0] != zone {
		return "", fmt.Errorf("PV %s node affinity %+v, want %s in [%s]", pv.Name, exprs, topologyKey, zone)
	}
	// Ownership metadata on the Cinder volume.
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	v := st.volume(pv.Spec.CSI.VolumeHandle)
	if v == nil {
		return "", fmt.Errorf("volume %s not in the emulator", pv.Spec.CSI.VolumeHandle)
	}
	want := map[string]string{
		"csi.storage.k8s.io/pvc/name": claim, "csi.storage.k8s.io/pvc/namespace": ns,
		"csi.storage.k8s.io/pv/name": pv.Name, "cinder.csi.openstack.org/cluster": "kubernetes",
	}
	for key, val := range want {
		if v.Metadata[key] != val {
			return "", fmt.Errorf("volume %s metadata %s=%q, want %q (all: %v)", v.ID, key, v.Metadata[key], val, v.Metadata)
		}
	}
	if v.AZ != zone || v.Name != pv.Name {
		return "", fmt.Errorf("volume %s: name %q AZ %q, want %q in %q", v.ID, v.Name, v.AZ, pv.Name, zone)
	}
	return fmt.Sprintf("PV %s bound, nodeAffinity %s=%s, Cinder volume %s in %s with metadata %v", pv.Name, topologyKey, zone, v.ID, v.AZ, want), nil
}

func (e *env) attach() (string, error) {
	pod, err := e.cp.client.CoreV1().Pods(ns).Get(e.ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	m, err := e.k.mount(e.ctx, pod, "csi-pvc-cinderplugin", stepTimeout)
	if err != nil {
		return "", err
	}
	e.mounted["csi-pvc-cinderplugin"] = m
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	var att string
	for _, a := range st.Attachments {
		if a.VolumeID == m.pv.Spec.CSI.VolumeHandle && a.ServerID == e.k.nodeID && a.LoopDevice != "" {
			att = fmt.Sprintf("%s on %s (%s)", a.Device, a.LoopDevice, a.Status)
		}
	}
	if att == "" {
		return "", fmt.Errorf("no hot-plugged attachment of %s in the emulator: %+v", m.pv.Spec.CSI.VolumeHandle, st.Attachments)
	}
	if err := writeFile(filepath.Join(m.target, "hello.txt"), payload); err != nil {
		return "", err
	}
	return fmt.Sprintf("VolumeAttachment attached in %.1fs, publish context %v; %s; NodeStage+NodePublish, wrote hello.txt", m.attachNS.Seconds(), m.pubCtx, att), nil
}

func (e *env) snapshot() (string, error) {
	if _, err := e.applyExample("volumesnapshotclass.yaml", nil); err != nil {
		return "", err
	}
	if _, err := e.applyExample("snapshot/snapshot.yaml", nil); err != nil {
		return "", err
	}
	var handle string
	if err := e.waitReadyToUse(snapshotGVR, "new-snapshot-demo"); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	src := e.mounted["csi-pvc-cinderplugin"].pv.Spec.CSI.VolumeHandle
	for _, s := range st.Snapshots {
		if s.VolumeID == src {
			handle = s.ID
			if s.Metadata["csi.storage.k8s.io/volumesnapshot/name"] != "new-snapshot-demo" {
				return "", fmt.Errorf("snapshot %s metadata %v lacks the VolumeSnapshot name", s.ID, s.Metadata)
			}
		}
	}
	if handle == "" {
		return "", fmt.Errorf("no Cinder snapshot of %s: %+v", src, st.Snapshots)
	}
	return "new-snapshot-demo readyToUse (class csi-cinder-snapclass, force-create on the in-use volume): Cinder snapshot " + handle, nil
}

func (e *env) restore() (string, error) {
	m, err := e.consume("snapshot/restore.yaml", "snapshot-demo-restore", nil)
	if err != nil {
		return "", err
	}
	if err := readBack(m); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	v := st.volume(m.pv.Spec.CSI.VolumeHandle)
	if v == nil || v.SnapshotID == "" {
		return "", fmt.Errorf("restored volume %+v has no snapshot_id", v)
	}
	return fmt.Sprintf("PVC bound to volume %s from snapshot %s, attached in %.1fs, hello.txt read back", v.ID, v.SnapshotID, m.attachNS.Seconds()), nil
}

func (e *env) clone() (string, error) {
	m, err := e.consume("clone/clone.yaml", "csi-pvc-cinderplugin-clone", nil)
	if err != nil {
		return "", err
	}
	if err := readBack(m); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	v := st.volume(m.pv.Spec.CSI.VolumeHandle)
	if v == nil || v.SourceVolID != e.mounted["csi-pvc-cinderplugin"].pv.Spec.CSI.VolumeHandle || v.SizeGiB != 2 {
		return "", fmt.Errorf("clone volume %+v: want source_volid of the first volume and 2 GiB", v)
	}
	return fmt.Sprintf("2Gi clone %s (source_volid %s), hello.txt read back", v.ID, v.SourceVolID), nil
}

// xfsClass is the example StorageClass with fstype xfs: this machine lacks
// CAP_SYS_RESOURCE, so online ext4 growth fails here (DEVELOPERS.md); XFS
// grows online.
const xfsClass = "csi-sc-cinderplugin-xfs"

func toXFSClass(u *unstructured.Unstructured) {
	if u.GetKind() == "PersistentVolumeClaim" {
		_ = unstructured.SetNestedField(u.Object, xfsClass, "spec", "storageClassName")
	}
}

func (e *env) resize() (string, error) {
	if _, err := e.applyExample("storageclass.yaml", func(u *unstructured.Unstructured) {
		u.SetName(xfsClass)
		_ = unstructured.SetNestedField(u.Object, "xfs", "parameters", "csi.storage.k8s.io/fstype")
	}); err != nil {
		return "", err
	}
	m, err := e.consume("resize/pvc.yaml", "resize-demo", toXFSClass)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(m.target, "hello.txt"), payload); err != nil {
		return "", err
	}
	before, err := fsSize(m.target)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	if _, err := e.applyExample("resize/pvc-2gi.yaml", toXFSClass); err != nil {
		return "", err
	}
	got, err := e.k.expandFS(e.ctx, m, stepTimeout)
	if err != nil {
		return "", fmt.Errorf("%w%s", err, claimEvents(e.ctx, e.cp.client, ns, "resize-demo"))
	}
	controllerDone := time.Since(t0)
	pvc, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, "resize-demo", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	want := resource.MustParse("2Gi")
	if c := pvc.Status.Capacity[corev1.ResourceStorage]; c.Cmp(want) != 0 {
		return "", fmt.Errorf("PVC capacity %s, want 2Gi", c.String())
	}
	after, err := fsSize(m.target)
	if err != nil {
		return "", err
	}
	if after < before+(1<<29) {
		return "", fmt.Errorf("filesystem %d bytes before, %d after NodeExpand", before, after)
	}
	if err := readBack(m); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	v := st.volume(m.pv.Spec.CSI.VolumeHandle)
	if v == nil || v.SizeGiB != 2 {
		return "", fmt.Errorf("Cinder volume after resize: %+v", v)
	}
	return fmt.Sprintf("in-use volume: ControllerExpand done (FileSystemResizePending) after %.1fs, NodeExpand -> %d bytes; PVC status 2Gi; fs %d -> %d bytes", controllerDone.Seconds(), got, before, after), nil
}

// renameClaim makes an example's PVC and pod (and the pod's volume) use
// name, so one example can back several flows.
func renameClaim(name string) func(u *unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "PersistentVolumeClaim":
			u.SetName(name)
		case "Pod":
			u.SetName(name)
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumes")
			for _, v := range vols {
				_ = unstructured.SetNestedField(v.(map[string]any), name, "persistentVolumeClaim", "claimName")
			}
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "volumes")
		}
	}
}

// resizeOffline is kubelet's offline expansion on the example class
// (ext4): the pod goes and the volume detaches, the claim grows
// (ControllerExpand on an available volume), a new pod attaches it again,
// NodeStage finds the device larger than the filesystem and grows it
// before mounting, and NodeExpand then reports the size.
func (e *env) resizeOffline() (string, error) {
	const claim = "resize-ext4"
	m, err := e.consume("resize/pvc.yaml", claim, renameClaim(claim))
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(m.target, "hello.txt"), payload); err != nil {
		return "", err
	}
	before, err := fsSize(m.target)
	if err != nil {
		return "", err
	}
	if err := e.k.unmount(e.ctx, m); err != nil {
		return "", err
	}
	delete(e.mounted, claim)
	zero := int64(0)
	if err := e.cp.client.CoreV1().Pods(ns).Delete(e.ctx, claim, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return "", err
	}
	handle := m.pv.Spec.CSI.VolumeHandle
	if err := poll(e.ctx, stepTimeout, "detach of "+handle, func(ctx context.Context) (bool, error) {
		st, err := e.d.state(ctx)
		if err != nil {
			return false, err
		}
		v := st.volume(handle)
		return v != nil && v.Status == "available", nil
	}); err != nil {
		return "", err
	}
	t0 := time.Now()
	if err := resizeClaim(e.ctx, e.cp.client, ns, claim, resource.MustParse("2Gi")); err != nil {
		return "", err
	}
	if err := poll(e.ctx, stepTimeout, "ControllerExpand of the available volume", func(ctx context.Context) (bool, error) {
		st, err := e.d.state(ctx)
		if err != nil {
			return false, err
		}
		v := st.volume(handle)
		return v != nil && v.SizeGiB == 2, nil
	}); err != nil {
		return "", fmt.Errorf("%w%s", err, claimEvents(e.ctx, e.cp.client, ns, claim))
	}
	controllerDone := time.Since(t0)
	// A new pod: attach, stage (grows ext4 offline), publish, NodeExpand.
	// Only the example's pod: re-applying its 1Gi claim would shrink it.
	all, err := decodeFile(filepath.Join(e.root, "examples", "resize", "pvc.yaml"))
	if err != nil {
		return "", err
	}
	var podObjs []*unstructured.Unstructured
	for _, u := range all {
		if u.GetKind() == "Pod" {
			podObjs = append(podObjs, u)
		}
	}
	objs, err := e.applyObjects(podObjs, func(u *unstructured.Unstructured) {
		renameClaim(claim)(u)
		u.SetName(claim + "-2")
	})
	if err != nil {
		return "", err
	}
	pod, err := podOf(objs)
	if err != nil {
		return "", err
	}
	m2, err := e.k.mount(e.ctx, pod, claim, stepTimeout)
	if err != nil {
		return "", err
	}
	e.mounted[claim] = m2
	got, err := e.k.expandFS(e.ctx, m2, stepTimeout)
	if err != nil {
		return "", err
	}
	pvc, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if c := pvc.Status.Capacity[corev1.ResourceStorage]; c.Cmp(resource.MustParse("2Gi")) != 0 {
		return "", fmt.Errorf("PVC capacity %s, want 2Gi", c.String())
	}
	after, err := fsSize(m2.target)
	if err != nil {
		return "", err
	}
	if after < before+(1<<29) {
		return "", fmt.Errorf("ext4 %d bytes before, %d after restage", before, after)
	}
	if err := readBack(m2); err != nil {
		return "", err
	}
	return fmt.Sprintf("detached volume: ControllerExpand after %.1fs; new pod: NodeStage grew ext4 %d -> %d bytes, NodeExpand -> %d; PVC status 2Gi; data intact", controllerDone.Seconds(), before, after, got), nil
}

func (e *env) rwop() (string, error) {
	const claim = "rwop-demo"
	m, err := e.consume("nginx.yaml", claim, func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "PersistentVolumeClaim":
			u.SetName(claim)
			_ = unstructured.SetNestedStringSlice(u.Object, []string{"ReadWriteOncePod"}, "spec", "accessModes")
		case "Pod":
			u.SetName(claim)
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumes")
			for _, v := range vols {
				_ = unstructured.SetNestedField(v.(map[string]any), claim, "persistentVolumeClaim", "claimName")
			}
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "volumes")
		}
	})
	if err != nil {
		return "", err
	}
	if got := m.cap.GetAccessMode().GetMode(); got != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return "", fmt.Errorf("kubelet mapping gave %s for ReadWriteOncePod (driver lacks SINGLE_NODE_MULTI_WRITER?)", got)
	}
	if err := writeFile(filepath.Join(m.target, "hello.txt"), payload); err != nil {
		return "", err
	}
	return fmt.Sprintf("ReadWriteOncePod PV %s provisioned, attached, staged and published as SINGLE_NODE_SINGLE_WRITER", m.pv.Name), nil
}

func (e *env) badParameter() (string, error) {
	const class, claim = "csi-sc-cinderplugin-bad", "bad-parameter"
	// A typo of "type": the plugin must refuse it by name.
	if _, err := e.applyExample("storageclass.yaml", func(u *unstructured.Unstructured) {
		u.SetName(class)
		_ = unstructured.SetNestedField(u.Object, "ssd", "parameters", "tpye")
		_ = unstructured.SetNestedField(u.Object, "Immediate", "volumeBindingMode")
	}); err != nil {
		return "", err
	}
	// Only the claim of resize/pvc.yaml: Immediate binding needs no pod.
	objs, err := decodeFile(filepath.Join(e.root, "examples", "resize", "pvc.yaml"))
	if err != nil {
		return "", err
	}
	pvc := objs[0]
	if pvc.GetKind() != "PersistentVolumeClaim" {
		return "", fmt.Errorf("resize/pvc.yaml starts with a %s", pvc.GetKind())
	}
	pvc.SetName(claim)
	_ = unstructured.SetNestedField(pvc.Object, class, "spec", "storageClassName")
	if err := e.a.apply(e.ctx, ns, false, pvc); err != nil {
		return "", err
	}
	const wantMsg = `parameter "tpye": unknown parameter`
	var msg string
	err = poll(e.ctx, stepTimeout, "ProvisioningFailed event on "+claim, func(ctx context.Context) (bool, error) {
		evs, err := e.cp.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + claim})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "ProvisioningFailed" {
				msg = ev.Message
				return strings.Contains(ev.Message, wantMsg) && strings.Contains(ev.Message, "InvalidArgument"), nil
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w (last ProvisioningFailed message: %q)", err, msg)
	}
	if err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Delete(e.ctx, claim, metav1.DeleteOptions{}); err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	for _, v := range st.Volumes {
		if v.Metadata["csi.storage.k8s.io/pvc/name"] == claim {
			return "", fmt.Errorf("a volume was created for the bad claim: %+v", v)
		}
	}
	return fmt.Sprintf("ProvisioningFailed: %q; no Cinder volume created", msg), nil
}

const attachPath = "POST /compute/v2.1/servers/{server_id}/os-volume_attachments"

func (e *env) attachUnderFaults() (string, error) {
	const claim = "flaky-attach"
	// Every attach call fails (500 or 503, half each) until the attacher
	// has retried at least twice, then half of them until it converges.
	if err := e.d.faults(e.ctx, map[string]any{"error_rate": 1.0, "only_paths": []string{attachPath}}); err != nil {
		return "", err
	}
	defer func() { _ = e.d.faults(context.Background(), map[string]any{}) }()
	c0, err := e.d.counters(e.ctx)
	if err != nil {
		return "", err
	}
	objs, err := e.applyExample("nginx.yaml", func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "PersistentVolumeClaim":
			u.SetName(claim)
		case "Pod":
			u.SetName(claim)
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumes")
			for _, v := range vols {
				_ = unstructured.SetNestedField(v.(map[string]any), claim, "persistentVolumeClaim", "claimName")
			}
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "volumes")
		}
	})
	if err != nil {
		return "", err
	}
	if _, err := podOf(objs); err != nil {
		return "", err
	}
	if err := selectNode(e.ctx, e.cp.client, ns, claim, nodeName); err != nil {
		return "", err
	}
	_, pv, err := boundClaim(e.ctx, e.cp.client, ns, claim, stepTimeout)
	if err != nil {
		return "", err
	}
	if err := poll(e.ctx, stepTimeout, "two failed attach calls", func(ctx context.Context) (bool, error) {
		c, err := e.d.counters(ctx)
		return c[attachPath]-c0[attachPath] >= 2, err
	}); err != nil {
		return "", err
	}
	if err := e.d.faults(e.ctx, map[string]any{"error_rate": 0.5, "only_paths": []string{attachPath}}); err != nil {
		return "", err
	}
	t0 := time.Now()
	if _, err := e.k.attachedVA(e.ctx, pv.Name, stepTimeout); err != nil {
		return "", err
	}
	converged := time.Since(t0)
	c1, err := e.d.counters(e.ctx)
	if err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	n := 0
	for _, a := range st.Attachments {
		if a.VolumeID == pv.Spec.CSI.VolumeHandle {
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("%d emulator attachments of %s, want exactly 1", n, pv.Spec.CSI.VolumeHandle)
	}
	return fmt.Sprintf("attached after %d attach calls (>= 2 injected failures); converged %.1fs after the fault rate dropped to 0.5; one attachment", c1[attachPath]-c0[attachPath], converged.Seconds()), nil
}

// teardownFlow is flow 7: kubelet unmounts, pods go (detach), snapshots
// and claims go, and the emulator ends empty.
func (e *env) teardownFlow() (string, error) {
	for claim, m := range e.mounted {
		if err := e.k.unmount(e.ctx, m); err != nil {
			return "", err
		}
		delete(e.mounted, claim)
	}
	zero := int64(0)
	for _, pod := range e.pods {
		err := e.cp.client.CoreV1().Pods(ns).Delete(e.ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !isNotFound(err) {
			return "", err
		}
	}
	t0 := time.Now()
	if err := poll(e.ctx, stepTimeout, "every VolumeAttachment gone and no emulator attachment", func(ctx context.Context) (bool, error) {
		vas, err := e.cp.client.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		st, err := e.d.state(ctx)
		if err != nil {
			return false, err
		}
		return len(vas.Items) == 0 && len(st.Attachments) == 0, nil
	}); err != nil {
		return "", err
	}
	detached := time.Since(t0)
	links, _ := filepath.Glob(filepath.Join(e.d.devRoot, "vd*"))
	if len(links) > 0 {
		return "", fmt.Errorf("hot-plug links left after detach: %v", links)
	}
	if err := e.a.dyn.Resource(snapshotGVR).Namespace(ns).Delete(e.ctx, "new-snapshot-demo", metav1.DeleteOptions{}); err != nil {
		return "", err
	}
	if err := poll(e.ctx, stepTimeout, "emulator without snapshots", func(ctx context.Context) (bool, error) {
		st, err := e.d.state(ctx)
		return err == nil && len(st.Snapshots) == 0, err
	}); err != nil {
		return "", err
	}
	if err := e.deleteDerivedClaimsFirst(); err != nil {
		return "", err
	}
	if err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return "", err
	}
	var last *emuState
	if err := poll(e.ctx, stepTimeout, "no PV left and an empty emulator", func(ctx context.Context) (bool, error) {
		pvs, err := e.cp.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		last, err = e.d.state(ctx)
		return err == nil && len(pvs.Items) == 0 && last.empty(), err
	}); err != nil {
		left := ""
		if last != nil {
			for _, v := range last.Volumes {
				left += fmt.Sprintf(" [volume %s %s, %d attachments]", v.ID, v.Status, len(v.Attachments))
			}
		}
		return "", fmt.Errorf("%w; cloud: %v%s", err, last, left)
	}
	return fmt.Sprintf("detached in %.1fs; snapshot, PVCs and PVs deleted; cloud: %v", detached.Seconds(), last), nil
}

// deleteDerivedClaimsFirst deletes the claims made from another claim or a
// snapshot (clones, restores) and waits until their PVs are gone, before
// the sources go. Cinder Zed's RBD driver races when a clone and its source
// volume are deleted at once: the clone's delete looks up the parent image
// the source's delete just removed (rbd.ImageNotFound in cinder-volume.log)
// and the clone ends in error_deleting, which only an administrator can
// clear (seen on the rig 2026-12-02, volume e02201c4). Users deleting a
// namespace can hit the same; docs/design.md (DeleteVolume) says so.
func (e *env) deleteDerivedClaimsFirst() error {
	claims, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pvs := map[string]bool{}
	for _, c := range claims.Items {
		if c.Spec.DataSource == nil && c.Spec.DataSourceRef == nil {
			continue
		}
		if err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Delete(e.ctx, c.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			return err
		}
		if c.Spec.VolumeName != "" {
			pvs[c.Spec.VolumeName] = true
		}
	}
	return poll(e.ctx, stepTimeout, "the PVs of clones and restores gone", func(ctx context.Context) (bool, error) {
		for pv := range pvs {
			_, err := e.cp.client.CoreV1().PersistentVolumes().Get(ctx, pv, metav1.GetOptions{})
			if err == nil {
				return false, nil
			}
			if !isNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
}

// ------------------------------------------------------------------ teardown

// teardownAll stops everything whatever happened: mounts, processes (the
// emulator unplugs its loop devices on SIGTERM), leftover mounts and loop
// devices under the state dir, the state dir itself (kept with its logs
// when the test failed or E2E_K8S_KEEP=1).
func (e *env) teardownAll() {
	t := e.t
	for _, all := range []map[string]*mounted{e.mounted, e.mmounted} {
		for _, m := range all {
			if err := m.k.unmount(context.Background(), m); err != nil {
				t.Logf("teardown: %v", err)
			}
		}
	}
	if e.k != nil {
		e.k.close()
	}
	for _, n := range e.mnodes {
		if n.k != nil {
			n.k.close()
		}
	}
	t0 := time.Now()
	e.p.stopAll()
	stopped := time.Since(t0)
	for _, mp := range mountsUnder(e.dir) {
		if out, err := exec.Command("umount", "-l", mp).CombinedOutput(); err != nil {
			t.Errorf("teardown: umount %s: %v: %s", mp, err, out)
		} else {
			t.Errorf("teardown: %s was still mounted", mp)
		}
	}
	for _, loop := range loopsUnder(e.dir) {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("teardown: losetup -d %s: %v: %s", loop, err, out)
		} else {
			t.Errorf("teardown: %s was still attached", loop)
		}
	}
	if e.d != nil && e.d.real != nil {
		// Whatever a failed run left on the real cloud: detached and
		// deleted through the API, and reported.
		left, err := e.d.real.purge(context.Background(), 3*time.Minute)
		switch {
		case err != nil:
			t.Errorf("teardown: purging the real cloud (found %s): %v", left, err)
		case left != (&emuState{}).String():
			t.Errorf("teardown: the real cloud still held %s; detached and deleted", left)
		}
	}
	if e.rm != nil {
		left, err := e.rm.purge(context.Background(), 3*time.Minute)
		switch {
		case err != nil:
			t.Errorf("teardown: purging the real Manila (found %s): %v", left, err)
		case left != (&manilaState{}).String():
			t.Errorf("teardown: the real Manila still held %s; deleted", left)
		}
	}
	e.times = append(e.times, timing{step: "down", took: stopped, ok: true, detail: "every process stopped (SIGTERM to its group)"})
	table := e.table()
	t.Logf("step times:\n%s", table)
	_ = os.WriteFile(filepath.Join(e.dir, "e2e-times.txt"), []byte(table), 0o644)
	if out := os.Getenv("E2E_K8S_TIMES"); out != "" {
		_ = os.WriteFile(out, []byte(table), 0o644)
	}
	if os.Getenv("E2E_K8S_KEEP") == "1" {
		t.Logf("state and logs kept in %s (logs/*.log)", e.dir)
		return
	}
	if t.Failed() {
		// Only the logs and the step table survive a failure: etcd data,
		// volume files, certificates and sockets go.
		entries, _ := os.ReadDir(e.dir)
		for _, en := range entries {
			if en.Name() != "logs" && en.Name() != "e2e-times.txt" {
				_ = os.RemoveAll(filepath.Join(e.dir, en.Name()))
			}
		}
		t.Logf("logs kept in %s/logs (one per process); remove the directory when done", e.dir)
		return
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Errorf("teardown: %v", err)
	}
}
