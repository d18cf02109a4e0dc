package k8s

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cinder-csi/cinder-csi/pkg/kata"
	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// Flows 11 and 12 (issue 23): the PVC kata-mount annotation read at
// CreateVolume, and a peer pod (runtimeClassName: kata-remote) whose volume
// the peer-pod driver attaches to the pod's own VM, played by an emulator
// server plus the PeerPod CR cloud-api-adaptor would create.

const (
	peerPodClass   = "csi-sc-cinder-peerpod"
	peerPodClaim   = "peerpod-data"
	peerPodPodName = "peerpod-app"
	peerPodSandbox = "5e1f00aa77c34d21"
)

var peerPodGVR = schema.GroupVersionResource{Group: "confidentialcontainers.org", Version: "v1alpha1", Resource: "peerpods"}

// peerPodState is what flow 12's steps share.
type peerPodState struct {
	nodeSock string
	k        *kubelet
	pod      *corev1.Pod
	vmID     string
	volID    string
	m        *mounted
}

func (e *env) peerPodFlows() {
	e.step("11 PVC kata-mount annotation", e.kataMountAnnotation)
	if realCloudMode() {
		e.skip("12 peer pod", "emulator only: the pod VM is an emulator server (no cloud-api-adaptor on the rig)")
		return
	}
	st := &peerPodState{}
	e.step("12 peer pod: CRD, CSIDriver, --peer-pods", func() (string, error) { return e.upPeerPods(st) })
	e.step("12 peer pod: attach to its VM", func() (string, error) { return e.peerPodAttach(st) })
	e.step("12 peer pod: delete -> detach, 0 left", func() (string, error) { return e.peerPodDelete(st) })
}

// claimWith creates a PVC of class with annotations, on our node.
func (e *env) claimWith(name, class string, mode corev1.PersistentVolumeAccessMode, ann map[string]string) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{mode},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
		return err
	}
	return selectNode(e.ctx, e.cp.client, ns, name, nodeName)
}

// deleteClaimAndWait deletes a PVC and waits until its volume is gone.
func (e *env) deleteClaimAndWait(name, volID string) error {
	if err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if volID == "" {
		return nil
	}
	return poll(e.ctx, stepTimeout, "volume "+volID+" deleted", func(ctx2 context.Context) (bool, error) {
		st, err := e.d.state(ctx2)
		return err == nil && st.volume(volID) == nil, err
	})
}

// kataMountAnnotation: host and direct-volume reach the volume context;
// a bad value is refused at CreateVolume with nothing created.
func (e *env) kataMountAnnotation() (string, error) {
	var parts []string
	for _, v := range []string{"host", "direct-volume"} {
		name := "kata-mount-" + v
		if err := e.claimWith(name, "csi-sc-cinderplugin", corev1.ReadWriteOncePod, map[string]string{kata.OptInKey: v}); err != nil {
			return "", err
		}
		_, pv, err := boundClaim(e.ctx, e.cp.client, ns, name, stepTimeout)
		if err != nil {
			return "", err
		}
		if got := pv.Spec.CSI.VolumeAttributes[kata.VolumeContextKataMount]; got != v {
			return "", fmt.Errorf("PV %s volumeAttributes %v: %s=%q, want %q", pv.Name, pv.Spec.CSI.VolumeAttributes, kata.VolumeContextKataMount, got, v)
		}
		parts = append(parts, fmt.Sprintf("%s -> PV %s volumeAttributes %s=%s", name, pv.Name, kata.VolumeContextKataMount, v))
		if err := e.deleteClaimAndWait(name, pv.Spec.CSI.VolumeHandle); err != nil {
			return "", err
		}
	}
	const bad = "kata-mount-bad"
	if err := e.claimWith(bad, "csi-sc-cinderplugin", corev1.ReadWriteOncePod, map[string]string{kata.OptInKey: "virtio-fs"}); err != nil {
		return "", err
	}
	var msg string
	err := poll(e.ctx, stepTimeout, "ProvisioningFailed for "+bad, func(ctx2 context.Context) (bool, error) {
		msg = claimEvents(ctx2, e.cp.client, ns, bad)
		return strings.Contains(msg, "must be direct-volume or host"), nil
	})
	if err != nil {
		return "", fmt.Errorf("%w%s", err, msg)
	}
	pvc, err := e.cp.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, bad, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	for _, v := range st.Volumes {
		if v.Name == "pvc-"+string(pvc.UID) {
			return "", fmt.Errorf("volume %s created for a refused annotation", v.ID)
		}
	}
	if err := e.deleteClaimAndWait(bad, ""); err != nil {
		return "", err
	}
	parts = append(parts, bad+" (virtio-fs) refused at CreateVolume: InvalidArgument, nothing created")
	return strings.Join(parts, "; "), nil
}

// upPeerPods installs the stand-in PeerPod CRD, the peer-pod CSIDriver and
// class and the kata-remote RuntimeClass, starts the plugin with
// --peer-pods (controller and node) and a csi-provisioner for it, and
// registers the driver on the node as node-driver-registrar would.
func (e *env) upPeerPods(st *peerPodState) (string, error) {
	if err := applyCRDs(e.ctx, e.cp, filepath.Join(e.root, "tests/e2e/k8s/testdata")); err != nil {
		return "", err
	}
	for _, f := range []string{"manifests/cinder-peerpod/csi-cinder-peerpod-driver.yaml", "examples/peer-pods/storageclass.yaml", "examples/peer-pods/runtimeclass.yaml"} {
		objs, err := decodeFile(filepath.Join(e.root, f))
		if err != nil {
			return "", err
		}
		if err := e.a.apply(e.ctx, "", false, objs...); err != nil {
			return "", err
		}
	}
	if err := e.startPeerPodPlugin(st); err != nil {
		return "", err
	}
	k, err := newKubelet(e.ctx, e.cp.client, peerpod.DriverName, st.nodeSock, e.d.kubeletDir, nodeName)
	if err != nil {
		return "", err
	}
	st.k = k
	// kubelet's registration of a second driver on the node: its node id
	// beside Cinder's in the Node annotation, its entry in the CSINode.
	if err := k.register(e.ctx); err != nil {
		return "", err
	}
	return "stand-in PeerPod CRD established, CSIDriver " + peerpod.DriverName + " (attachRequired false), RuntimeClass kata-remote, plugin --peer-pods controller+node, csi-provisioner", nil
}

// startPeerPodPlugin runs the binary with the args of the peer-pod
// manifests (manifests/cinder-peerpod: --peer-pods, the RuntimeClasses) and
// a csi-provisioner on its controller socket.
func (e *env) startPeerPodPlugin(st *peerPodState) error {
	args, err := sidecarargs.WorkloadArgs(filepath.Join(e.root, sidecarargs.PeerPodDir), sidecarargs.PeerPodController, sidecarargs.PeerPodNode)
	if err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "peerpod")
	ctrlSock, nodeSock := filepath.Join(dir, "controller.sock"), filepath.Join(dir, "node.sock")
	st.nodeSock = nodeSock
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plugin := filepath.Join(e.root, "bin", "cinder-csi-plugin")
	if b := os.Getenv("E2E_K8S_BIN"); b != "" {
		plugin = filepath.Join(b, "cinder-csi-plugin")
	}
	ctrl := e.d.override("peerpod/controller", args["controller/cinder-csi-plugin"], map[string]string{
		"endpoint": "unix://" + ctrlSock, "cloud-config": e.d.cloudConf, "kubeconfig": e.cp.kubeconfig,
		"http-endpoint": "", "peer-pods": "true", "peer-pod-resync": "1s", "provide-node-service": "false",
	})
	if _, err := e.p.start("peerpod-controller", nil, plugin, ctrl...); err != nil {
		return err
	}
	nodeConf := filepath.Join(dir, "cloud.conf")
	if err := nodeCloudConf(e.root, nodeConf); err != nil {
		return err
	}
	node := e.d.override("peerpod/node", args["node/cinder-csi-plugin"], map[string]string{
		"endpoint": "unix://" + nodeSock, "cloud-config": nodeConf, "kubeconfig": e.cp.kubeconfig, "http-endpoint": "",
		"kata-record-root": filepath.Join(dir, "direct-volumes"), "peer-pods": "true",
		"dev-root": e.d.devRoot, "sys-root": e.d.sysRoot, "metadata-url": e.d.metadataURL, "kubelet-root-dir": e.d.kubeletDir,
	})
	if _, err := e.p.start("peerpod-node", []string{"NODE_NAME=" + nodeName}, plugin, node...); err != nil {
		return err
	}
	if err := poll(e.ctx, 60*time.Second, "the peer-pod plugin's CSI sockets", func(context.Context) (bool, error) {
		if err := e.p.checkAlive(); err != nil {
			return false, err
		}
		for _, s := range []string{ctrlSock, nodeSock} {
			if fi, err := os.Stat(s); err != nil || fi.Mode()&os.ModeSocket == 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	prov := e.d.override("peerpod/csi-provisioner", args["controller/csi-provisioner"], map[string]string{
		"csi-address": ctrlSock, "kubeconfig": e.cp.kubeconfig, "http-endpoint": "", "leader-election": "false",
	})
	_, err = e.p.start("peerpod-csi-provisioner", nil, filepath.Join(k8sRigBin(), "csi-provisioner"), prov...)
	return err
}

// k8sRigBin is where the rig's binaries are (as TestKubernetes finds them).
func k8sRigBin() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(getenv("K8S_RIG_CACHE", filepath.Join(home, ".cache", "k8s-rig")), "bin")
}

// peerPodAttach: the example app (PVC RWOP + kata-remote pod) is
// provisioned, published on the worker (the record, nothing attached
// there), and once "CAA" creates the VM (an emulator server and the PeerPod
// CR), the controller attaches the volume to it.
func (e *env) peerPodAttach(st *peerPodState) (string, error) {
	objs, err := e.applyExample("peer-pods/app.yaml", nil)
	if err != nil {
		return "", err
	}
	if err := selectNode(e.ctx, e.cp.client, ns, peerPodClaim, nodeName); err != nil {
		return "", err
	}
	if st.pod, err = podOf(objs); err != nil {
		return "", err
	}
	if st.pod, err = e.cp.client.CoreV1().Pods(ns).Get(e.ctx, peerPodPodName, metav1.GetOptions{}); err != nil {
		return "", err
	}
	_, pv, err := boundClaim(e.ctx, e.cp.client, ns, peerPodClaim, stepTimeout)
	if err != nil {
		return "", err
	}
	st.volID = pv.Spec.CSI.VolumeHandle
	refusal, err := e.peerPodRefusesRunc(st, pv)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	// kubelet: no VolumeAttachment for an attachRequired: false driver,
	// so publish right away (mount would wait for one).
	target := filepath.Join(e.d.kubeletDir, "pods", string(st.pod.UID), "volumes/kubernetes.io~csi", pv.Name, "mount")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", err
	}
	if _, err := st.k.node.NodePublishVolume(e.ctx, &csi.NodePublishVolumeRequest{
		VolumeId: st.volID, TargetPath: target, VolumeCapability: st.k.capability(pv), VolumeContext: podVolumeContext(st.pod, pv),
	}); err != nil {
		return "", fmt.Errorf("peer-pod NodePublishVolume: %w", err)
	}
	st.m = &mounted{pod: st.pod, pv: pv, target: target}
	rec, err := kata.NewStore(filepath.Join(e.dir, "peerpod", "direct-volumes")).Read(target)
	if err != nil || rec.VolumeType != "directvol" || rec.Device != st.volID {
		return "", fmt.Errorf("direct-volume record %+v, %v", rec, err)
	}
	published := time.Since(t0)
	// cloud-api-adaptor: the pod VM, then the PeerPod CR naming it.
	st.vmID = "9a1c2b3d-0000-4000-8000-00000000c0de"
	name := peerpod.InstanceName(peerPodPodName, peerPodSandbox)
	if err := admin(e.ctx, e.d.emulatorURL, http.MethodPost, "/admin/servers", map[string]any{"ID": st.vmID, "Name": name, "AZ": zone}, nil); err != nil {
		return "", err
	}
	cr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod",
		"metadata": map[string]any{"name": peerPodPodName + "-resource-x7k2p", "namespace": ns,
			"ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "Pod", "name": peerPodPodName, "uid": string(st.pod.UID)}}},
		"spec": map[string]any{"instanceID": st.vmID, "cloudProvider": "openstack"},
	}}
	if _, err := e.a.dyn.Resource(peerPodGVR).Namespace(ns).Create(e.ctx, cr, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	t1 := time.Now()
	if err := poll(e.ctx, stepTimeout, "volume attached to the pod VM", func(ctx2 context.Context) (bool, error) {
		s, err := e.d.state(ctx2)
		if err != nil {
			return false, err
		}
		for _, a := range s.Attachments {
			if a.VolumeID == st.volID {
				if a.ServerID != st.vmID {
					return false, fmt.Errorf("volume attached to %s, not the pod VM %s", a.ServerID, st.vmID)
				}
				return a.Status == "attached", nil
			}
		}
		return false, nil
	}); err != nil {
		return "", err
	}
	vas, err := e.cp.client.StorageV1().VolumeAttachments().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, va := range vas.Items {
		if va.Spec.Attacher == peerpod.DriverName {
			return "", fmt.Errorf("VolumeAttachment %s for the peer-pod driver: it must never attach to the worker", va.Name)
		}
	}
	return fmt.Sprintf("PV %s bound; %s; NodePublish wrote the directvol record (device %s) in %.2fs, no VolumeAttachment; pod VM %s (PeerPod CR) got the volume %.2fs after it appeared",
		pv.Name, refusal, st.volID, published.Seconds(), name, time.Since(t1).Seconds()), nil
}

// peerPodRefusesRunc: a plain (runc) pod on the peer-pod claim is refused
// by the node, FailedPrecondition, with no record and no target written
// (the node fails closed instead of handing it the worker's disk).
func (e *env) peerPodRefusesRunc(st *peerPodState, pv *corev1.PersistentVolume) (string, error) {
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "peerpod-plain", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "busybox:1.37"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: peerPodClaim}}}}},
	}
	plain, err := e.cp.client.CoreV1().Pods(ns).Create(e.ctx, plain, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	defer func() {
		_ = e.cp.client.CoreV1().Pods(ns).Delete(e.ctx, plain.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}()
	target := filepath.Join(e.d.kubeletDir, "pods", string(plain.UID), "volumes/kubernetes.io~csi", pv.Name, "mount")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", err
	}
	_, err = st.k.node.NodePublishVolume(e.ctx, &csi.NodePublishVolumeRequest{
		VolumeId: st.volID, TargetPath: target, VolumeCapability: st.k.capability(pv), VolumeContext: podVolumeContext(plain, pv),
	})
	if status.Code(err) != codes.FailedPrecondition {
		return "", fmt.Errorf("NodePublish for runc pod %s: %v, want FailedPrecondition", plain.Name, err)
	}
	if _, serr := os.Stat(target); !os.IsNotExist(serr) {
		return "", fmt.Errorf("target %s written for the refused runc pod (%v)", target, serr)
	}
	if _, rerr := kata.NewStore(filepath.Join(e.dir, "peerpod", "direct-volumes")).Read(target); rerr == nil {
		return "", fmt.Errorf("direct-volume record written for the refused runc pod")
	}
	return "runc pod refused (FailedPrecondition, nothing written)", nil
}

// peerPodDelete: the pod goes (kubelet unpublishes); the controller
// detaches the volume from the VM; then the PVC is deleted with nothing
// left.
func (e *env) peerPodDelete(st *peerPodState) (string, error) {
	if _, err := st.k.node.NodeUnpublishVolume(e.ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: st.volID, TargetPath: st.m.target}); err != nil {
		return "", err
	}
	zero := int64(0)
	if err := e.cp.client.CoreV1().Pods(ns).Delete(e.ctx, peerPodPodName, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return "", err
	}
	t0 := time.Now()
	if err := poll(e.ctx, stepTimeout, "volume detached from the pod VM", func(ctx2 context.Context) (bool, error) {
		s, err := e.d.state(ctx2)
		if err != nil {
			return false, err
		}
		for _, a := range s.Attachments {
			if a.VolumeID == st.volID {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return "", err
	}
	detached := time.Since(t0)
	if err := e.deleteClaimAndWait(peerPodClaim, st.volID); err != nil {
		return "", err
	}
	st.k.close()
	return fmt.Sprintf("pod deleted: detached from the pod VM in %.2fs; PVC deleted, volume gone, 0 attachments", detached.Seconds()), nil
}
