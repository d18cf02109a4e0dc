package peerpod

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func peerPodObj(pod PodRef, instanceID string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "confidentialcontainers.org/v1alpha1", "kind": "PeerPod",
		"metadata": map[string]any{"name": pod.Name + "-resource-abcde", "namespace": pod.Namespace},
		"spec":     map[string]any{"instanceID": instanceID, "cloudProvider": "openstack"},
	}}
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: types.UID(pod.UID)}})
	return u
}

func pv(name, claim, volID string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: DriverName, VolumeHandle: volID}},
			ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: claim},
		},
	}
}

func peerPod(ref PodRef, claim, runtimeClass string, age time.Duration) *corev1.Pod {
	rc := runtimeClass
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace, UID: types.UID(ref.UID),
			CreationTimestamp: metav1.NewTime(time.Now().Add(-age))},
		Spec: corev1.PodSpec{NodeName: "worker-1", RuntimeClassName: &rc,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

func warnings(t *testing.T, kube *fake.Clientset, reason string) int {
	t.Helper()
	evs, err := kube.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Reason == reason {
			n++
		}
	}
	return n
}

// TestReconcilerFollowsThePods: a peer pod's volume is attached to its VM
// (found through the PeerPod CR), a second pod on the volume is refused, a
// runc pod never gets it; deleting the pod and its VM leaves 0
// attachments, and the volume then goes to the new pod's VM.
func TestReconcilerFollowsThePods(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("pv-rec")
	vmID := e.podVM(testPod, sandbox, false)
	kube := fake.NewSimpleClientset(pv("pv-rec", "data", vol), peerPod(testPod, "data", DefaultRuntimeClass, time.Minute))
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{PeerPodGVR: "PeerPodList"}, peerPodObj(testPod, vmID))
	e.att.locator.PeerPods = dyn
	r := NewReconciler(kube, e.att, ReconcilerOptions{AttachTimeout: 10 * time.Second})

	start := time.Now()
	if err := r.Pass(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.step("reconcile: attach to the pod VM (PeerPod CR)", start)
	if atts := e.attachments(vol); len(atts) != 1 || atts[0].ServerID != vmID {
		t.Fatalf("attachments %+v, want one on %s", atts, vmID)
	}

	// A younger peer pod on the same claim, and a runc pod: both refused.
	second := PodRef{Namespace: "ns", Name: "web-1", UID: "uid-web-1"}
	e.podVM(second, "77aa00bb11cc22dd", false)
	for _, p := range []*corev1.Pod{peerPod(second, "data", DefaultRuntimeClass, 0), peerPod(PodRef{"ns", "plain", "uid-plain"}, "data", "runc", 0)} {
		if _, err := kube.CoreV1().Pods("ns").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Pass(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := warnings(t, kube, EventReasonRefused); n != 2 {
		t.Fatalf("%d Refused events, want 2 (second peer pod, runc pod)", n)
	}
	if atts := e.attachments(vol); len(atts) != 1 || atts[0].ServerID != vmID {
		t.Fatalf("attachments %+v after the refused pods", atts)
	}
	for _, n := range []string{"web-1", "plain"} {
		_ = kube.CoreV1().Pods("ns").Delete(context.Background(), n, metav1.DeleteOptions{})
	}

	// Pod deleted; CAA deletes the VM without detaching first, and Nova's
	// cleanup fails: the pass still frees the volume.
	_ = kube.CoreV1().Pods("ns").Delete(context.Background(), testPod.Name, metav1.DeleteOptions{})
	e.emu.DeleteServer(vmID, true)
	start = time.Now()
	if err := r.Pass(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.step("reconcile: pod and VM deleted (orphaned attachment)", start)
	if n := e.emuAttachments(vol); n != 0 {
		t.Fatalf("%d attachments after the pod VM was deleted", n)
	}

	// The pod comes back (StatefulSet): new UID, new sandbox, new VM found
	// by name this time (no CR yet).
	again := PodRef{Namespace: "ns", Name: "web-0", UID: "uid-web-0-b"}
	vm2 := e.podVM(again, "0123456789abcdef", false)
	if _, err := kube.CoreV1().Pods("ns").Create(context.Background(), peerPod(again, "data", DefaultRuntimeClass, 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := r.Pass(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.step("reconcile: attach to the new pod VM (by name)", start)
	if atts := e.attachments(vol); len(atts) != 1 || atts[0].ServerID != vm2 {
		t.Fatalf("attachments %+v, want one on the new VM %s", atts, vm2)
	}

	// Pod deleted with its VM still running: detached from the VM.
	_ = kube.CoreV1().Pods("ns").Delete(context.Background(), again.Name, metav1.DeleteOptions{})
	start = time.Now()
	if err := r.Pass(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.step("reconcile: pod deleted, VM still running -> detach", start)
	if n := e.emuAttachments(vol); n != 0 {
		t.Fatalf("%d attachments after the pod was deleted", n)
	}
}
