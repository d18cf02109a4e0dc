package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Manila flows (issue 18): per protocol, a ReadWriteMany claim of
// examples/manila/pvc.yaml provisioned, its two pods on node-1 and node-2
// attached (per-node NFS ip rules, or the volume's cephx rule and its
// Secret), the share mounted on both nodes with data written on one and
// read on the other where this host can mount it, snapshot and restore,
// resize, and teardown with no share, snapshot, access rule or cephx
// Secret left.

// manilaCase is one protocol's run of the flows.
type manilaCase struct {
	proto  string // NFS or CEPHFS
	class  string // examples/manila file of the StorageClass
	claim  string
	mount  string // why the node path cannot run here; "" when it can
	pods   [2]string
	pvName string
	share  string
}

func (c *manilaCase) name() string { return strings.ToLower(c.proto) }

// manilaCases are the protocols this mode runs, with what decides whether
// NodeStage can mount here: this host has no kernel NFS or Ceph client;
// ceph-fuse mounts the real rig's CephFS, not the emulator's (its export
// locations name no Ceph cluster).
func (e *env) manilaCases() []*manilaCase {
	nfs := &manilaCase{proto: "NFS", class: "storageclass-nfs.yaml", claim: "manila-nfs-pvc",
		mount: "no kernel NFS client on this host: the NFS mount is proven in vm-rig guests (make e2e-vm: tests/e2e/manilavm/nfs; tests/e2e/openstack/manilanode)"}
	ceph := &manilaCase{proto: "CEPHFS", class: "storageclass-cephfs.yaml", claim: "manila-cephfs-pvc"}
	switch _, err := exec.LookPath("ceph-fuse"); {
	case e.rm == nil:
		ceph.mount = "the emulator's CephFS shares have no Ceph cluster behind them: ceph-fuse mounts only the real rig's (E2E_K8S_CLOUD=openstack)"
	case err != nil:
		ceph.mount = "ceph-fuse is not installed"
	}
	for _, c := range []*manilaCase{nfs, ceph} {
		c.pods = [2]string{c.claim + "-a", c.claim + "-b"}
	}
	return []*manilaCase{nfs, ceph}
}

// manilaFlows runs after the Cinder flows' teardown: the Manila driver
// comes up then, so its flows never see Cinder's objects and the other
// way round.
func (e *env) manilaFlows(rigBin, binDir string) {
	if realCloudMode() {
		if os.Getenv("MANILA_UP") != "1" {
			e.skip("M up Manila", "the rig's Manila is not up (MANILA_UP=1 comes from hack/e2e-openstack.sh)")
			return
		}
		rm, ok, err := newRealManila(e.ctx, e.d.real)
		if err != nil || !ok {
			e.step("M up Manila", func() (string, error) { return "", fmt.Errorf("the member's catalog has Manila: %v, %v", ok, err) })
			return
		}
		e.rm = rm
	}
	e.step("M up Manila", func() (string, error) { return e.upManila(rigBin, binDir) })
	cases := e.manilaCases()
	for _, c := range cases {
		e.step("M1 provision RWX "+c.name(), func() (string, error) { return e.manilaProvision(c) })
		e.step("M2 attach 2 nodes "+c.name(), func() (string, error) { return e.manilaAttach(c) })
		if c.mount != "" {
			e.skip("M3 2-node write/read "+c.name(), c.mount)
		} else {
			e.step("M3 2-node write/read "+c.name(), func() (string, error) { return e.manilaTwoNodes(c) })
		}
		e.step("M4 snapshot+restore "+c.name(), func() (string, error) { return e.manilaSnapshotRestore(c) })
		e.step("M5 resize "+c.name(), func() (string, error) { return e.manilaResize(c) })
	}
	e.step("M6 Manila teardown", func() (string, error) { return e.manilaTeardown(cases) })
}

// manilaPods pins the example's first pod to node-1 and the second to
// node-2, renamed after the case's claim.
func (c *manilaCase) edit(class string) func(u *unstructured.Unstructured) {
	n := 0
	return func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "PersistentVolumeClaim":
			u.SetName(c.claim)
			_ = unstructured.SetNestedField(u.Object, class, "spec", "storageClassName")
		case "Pod":
			u.SetName(c.pods[n])
			_ = unstructured.SetNestedField(u.Object, manilaNodeNames[n], "spec", "nodeName")
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumes")
			for _, v := range vols {
				_ = unstructured.SetNestedField(v.(map[string]any), c.claim, "persistentVolumeClaim", "claimName")
			}
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "volumes")
			n++
		}
	}
}

func (e *env) manilaProvision(c *manilaCase) (string, error) {
	objs, err := e.applyExample(filepath.Join("manila", c.class), nil)
	if err != nil {
		return "", err
	}
	class := objs[0].GetName()
	if _, err := e.applyExample("manila/pvc.yaml", c.edit(class)); err != nil {
		return "", err
	}
	_, pv, err := boundClaim(e.ctx, e.cp.client, ns, c.claim, stepTimeout)
	if err != nil {
		return "", err
	}
	c.pvName, c.share = pv.Name, pv.Spec.CSI.VolumeHandle
	st, err := e.manilaState(e.ctx)
	if err != nil {
		return "", err
	}
	sh := st.share(c.share)
	if sh == nil || !strings.EqualFold(sh.Proto, c.proto) || sh.Size != 1 || sh.Status != "available" {
		return "", fmt.Errorf("share %s for %s: %+v, want an available 1 GiB %s share", c.share, c.claim, sh, c.proto)
	}
	if got := sh.Metadata["csi.storage.k8s.io/pvc/name"]; got != c.claim {
		return "", fmt.Errorf("share %s metadata %v lacks pvc/name %s", sh.ID, sh.Metadata, c.claim)
	}
	return fmt.Sprintf("class %s: PV %s bound to share %s (%s, type %s, 1 GiB, available)", class, pv.Name, sh.ID, sh.Proto, sh.ShareType), nil
}

// manilaAttach waits for the attach/detach controller's VolumeAttachment
// of the claim's PV on both nodes (csi-attacher -> ControllerPublish) and
// checks the access the share got.
func (e *env) manilaAttach(c *manilaCase) (string, error) {
	for _, n := range e.mnodes {
		if _, err := n.k.attachedVA(e.ctx, c.pvName, stepTimeout); err != nil {
			return "", fmt.Errorf("%s: %w", n.name, err)
		}
	}
	st, err := e.manilaState(e.ctx)
	if err != nil {
		return "", err
	}
	sh := st.share(c.share)
	if sh == nil {
		return "", fmt.Errorf("share %s gone", c.share)
	}
	if c.proto == "NFS" {
		// One ip rule per node address (--node-addresses of each node).
		if sh.AccessRules != len(e.mnodes) {
			return "", fmt.Errorf("share %s has %d access rules, want one per node (%d)", sh.ID, sh.AccessRules, len(e.mnodes))
		}
		return fmt.Sprintf("VolumeAttachments attached on %v; share %s: %d ip access rules (%v)", manilaNodeNames, sh.ID, sh.AccessRules, manilaNodeAddresses), nil
	}
	pv, err := e.cp.client.CoreV1().PersistentVolumes().Get(e.ctx, c.pvName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ref := pv.Spec.CSI.NodeStageSecretRef
	if ref == nil {
		return "", fmt.Errorf("PV %s has no nodeStageSecretRef", pv.Name)
	}
	sec, err := e.cp.client.CoreV1().Secrets(ref.Namespace).Get(e.ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the cephx Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if sh.AccessRules != 1 || len(sec.Data) == 0 {
		return "", fmt.Errorf("share %s: %d access rules and Secret keys %d, want the volume's one cephx rule and its key", sh.ID, sh.AccessRules, len(sec.Data))
	}
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	return fmt.Sprintf("VolumeAttachments attached on %v; share %s: 1 cephx rule; Secret %s/%s (keys %v, values not logged)", manilaNodeNames, sh.ID, ref.Namespace, ref.Name, keys), nil
}

// manilaMount stages and publishes the claim for the pod on node n.
func (e *env) manilaMount(n *manilaNode, pod, claim string) (*mounted, error) {
	p, err := e.cp.client.CoreV1().Pods(ns).Get(e.ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	m, err := n.k.mount(e.ctx, p, claim, stepTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.name, err)
	}
	e.mmounted[n.name+"/"+claim] = m
	return m, nil
}

// manilaTwoNodes mounts the share on node-1 and node-2 and passes data
// both ways.
func (e *env) manilaTwoNodes(c *manilaCase) (string, error) {
	var ms []*mounted
	for i, n := range e.mnodes {
		m, err := e.manilaMount(n, c.pods[i], c.claim)
		if err != nil {
			return "", err
		}
		ms = append(ms, m)
	}
	if err := writeFile(filepath.Join(ms[0].target, "hello.txt"), payload); err != nil {
		return "", err
	}
	if err := readBack(ms[1]); err != nil {
		return "", fmt.Errorf("node-2 reading node-1's file: %w", err)
	}
	if err := writeFile(filepath.Join(ms[1].target, "from-node-2.txt"), c.claim+"\n"); err != nil {
		return "", err
	}
	got, err := os.ReadFile(filepath.Join(ms[0].target, "from-node-2.txt"))
	if err != nil || string(got) != c.claim+"\n" {
		return "", fmt.Errorf("node-1 reading node-2's file: %q, %v", got, err)
	}
	return fmt.Sprintf("NodeStage+NodePublish on %v (staging %s, ...); hello.txt written on node-1 read on node-2, and back", manilaNodeNames, ms[0].staging), nil
}

// manilaSnapshotRestore takes the VolumeSnapshot of examples/manila
// (snapshot-restore.yaml, renamed after the case) and restores it into a
// new claim; where the node path runs, the restored share is mounted on
// node-1 and the file read back.
func (e *env) manilaSnapshotRestore(c *manilaCase) (string, error) {
	if _, err := e.applyExample("manila/volumesnapshotclass.yaml", nil); err != nil {
		return "", err
	}
	objs, err := decodeFile(filepath.Join(e.root, "examples", "manila", "snapshot-restore.yaml"))
	if err != nil {
		return "", err
	}
	snap, restored := c.claim+"-snapshot", c.claim+"-restored"
	var keep []*unstructured.Unstructured
	for _, u := range objs {
		switch {
		case u.GetKind() == "VolumeSnapshot":
			u.SetName(snap)
			_ = unstructured.SetNestedField(u.Object, c.claim, "spec", "source", "persistentVolumeClaimName")
		case u.GetKind() == "PersistentVolumeClaim" && u.GetName() == "manila-nfs-restored":
			u.SetName(restored)
			pvc, _ := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, c.claim, metav1.GetOptions{})
			if pvc != nil && pvc.Spec.StorageClassName != nil {
				_ = unstructured.SetNestedField(u.Object, *pvc.Spec.StorageClassName, "spec", "storageClassName")
			}
			_ = unstructured.SetNestedField(u.Object, snap, "spec", "dataSource", "name")
		default:
			continue // the clone: not this flow's
		}
		keep = append(keep, u)
	}
	if _, err := e.a.applyObjects(e.ctx, ns, false, keep[0]); err != nil {
		return "", err
	}
	if err := e.waitReadyToUse(snapshotGVR, snap); err != nil {
		return "", err
	}
	st, err := e.manilaState(e.ctx)
	if err != nil {
		return "", err
	}
	if len(st.snapshotsOf(c.share)) != 1 {
		return "", fmt.Errorf("share %s has snapshots %v, want 1", c.share, st.snapshotsOf(c.share))
	}
	if _, err := e.a.applyObjects(e.ctx, ns, false, keep[1:]...); err != nil {
		return "", err
	}
	_, pv, err := boundClaim(e.ctx, e.cp.client, ns, restored, stepTimeout)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("VolumeSnapshot %s readyToUse (share snapshot %s); %s bound to share %s", snap, st.snapshotsOf(c.share)[0], restored, pv.Spec.CSI.VolumeHandle)
	if c.mount != "" {
		return detail, nil
	}
	m, err := e.mountRestored(restored)
	if err != nil {
		return "", err
	}
	if err := readBack(m); err != nil {
		return "", fmt.Errorf("restored share: %w", err)
	}
	return detail + "; mounted on node-1, hello.txt read back", nil
}

// mountRestored gives the restored claim a pod on node-1 (the example's
// first pod, renamed) and mounts it there.
func (e *env) mountRestored(claim string) (*mounted, error) {
	objs, err := decodeFile(filepath.Join(e.root, "examples", "manila", "pvc.yaml"))
	if err != nil {
		return nil, err
	}
	for _, u := range objs {
		if u.GetKind() != "Pod" {
			continue
		}
		c := &manilaCase{claim: claim, pods: [2]string{claim, claim}}
		if _, err := e.applyObjects([]*unstructured.Unstructured{u}, c.edit("")); err != nil {
			return nil, err
		}
		return e.manilaMount(e.mnodes[0], claim, claim)
	}
	return nil, fmt.Errorf("examples/manila/pvc.yaml has no pod")
}

// manilaResize grows the claim to 2Gi (examples/manila/resize.yaml's
// size): csi-resizer's ControllerExpand extends the share; a share needs
// no node expansion, so the resizer sets the claim's capacity itself.
func (e *env) manilaResize(c *manilaCase) (string, error) {
	objs, err := decodeFile(filepath.Join(e.root, "examples", "manila", "resize.yaml"))
	if err != nil {
		return "", err
	}
	want, _, _ := unstructured.NestedString(objs[0].Object, "spec", "resources", "requests", "storage")
	size := resource.MustParse(want)
	if err := resizeClaim(e.ctx, e.cp.client, ns, c.claim, size); err != nil {
		return "", err
	}
	if err := poll(e.ctx, stepTimeout, c.claim+" capacity "+want, func(ctx context.Context) (bool, error) {
		pvc, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, c.claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got := pvc.Status.Capacity[corev1.ResourceStorage]
		return got.Cmp(size) == 0, nil
	}); err != nil {
		return "", fmt.Errorf("%w%s", err, claimEvents(e.ctx, e.cp.client, ns, c.claim))
	}
	st, err := e.manilaState(e.ctx)
	if err != nil {
		return "", err
	}
	if sh := st.share(c.share); sh == nil || int64(sh.Size)<<30 != size.Value() {
		return "", fmt.Errorf("share %s after resize: %+v, want %s", c.share, sh, want)
	}
	return fmt.Sprintf("PVC %s capacity %s; share %s extended to %s", c.claim, want, c.share, want), nil
}

// manilaTeardown unmounts on both nodes, deletes the pods (detach: access
// rules revoked), the snapshots and the claims, and waits until the
// cloud holds nothing of the run and no cephx Secret is left.
func (e *env) manilaTeardown(cases []*manilaCase) (string, error) {
	for key, m := range e.mmounted {
		if err := m.k.unmount(e.ctx, m); err != nil {
			return "", err
		}
		delete(e.mmounted, key)
	}
	zero := int64(0)
	var claims []string
	for _, c := range cases {
		claims = append(claims, c.claim, c.claim+"-restored")
		for _, pod := range append(c.pods[:], c.claim+"-restored") {
			if err := e.cp.client.CoreV1().Pods(ns).Delete(e.ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !isNotFound(err) {
				return "", err
			}
		}
		if err := e.a.dyn.Resource(snapshotGVR).Namespace(ns).Delete(e.ctx, c.claim+"-snapshot", metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			return "", err
		}
	}
	for _, cl := range claims {
		if err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Delete(e.ctx, cl, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			return "", err
		}
	}
	var left string
	if err := poll(e.ctx, stepTimeout, "no Manila PV, VolumeAttachment, share, snapshot or cephx Secret left", func(ctx context.Context) (bool, error) {
		st, err := e.manilaState(ctx)
		if err != nil {
			return false, err
		}
		k8s, err := e.manilaObjectsLeft(ctx)
		if err != nil {
			return false, err
		}
		left = fmt.Sprintf("cloud: %v; Kubernetes: %v", st, k8s)
		return len(st.Shares)+len(st.Snapshots)+len(k8s) == 0, nil
	}); err != nil {
		return "", fmt.Errorf("%w; left: %s", err, left)
	}
	return "unmounted on both nodes, pods, snapshots and claims deleted; " + left, nil
}

// manilaObjectsLeft lists the Manila driver's PVs, VolumeAttachments and
// cephx Secrets still in the cluster.
func (e *env) manilaObjectsLeft(ctx context.Context) ([]string, error) {
	var out []string
	pvs, err := e.cp.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, pv := range pvs.Items {
		if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == manilaDriverName {
			out = append(out, "PV/"+pv.Name)
		}
	}
	vas, err := e.cp.client.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, va := range vas.Items {
		if va.Spec.Attacher == manilaDriverName {
			out = append(out, "VolumeAttachment/"+va.Name)
		}
	}
	secs, err := e.cp.client.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range secs.Items {
		if strings.HasPrefix(s.Name, "manila-cephx-") {
			out = append(out, "Secret/"+s.Name)
		}
	}
	return out, nil
}
