package peerpod

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-csi/cinder-csi/pkg/kata"
)

// PodGate makes the node fail closed: a peer-pod volume is published only
// for a pod whose RuntimeClass is a peer-pod one. Any other pod (runc, a
// local Kata VM) would get the worker's empty target directory and write
// to the worker's disk while the data it expects lives on a Cinder volume
// it never sees, so its publish is refused before anything is written.
// The pod comes from the podInfoOnMount keys (the CSIDriver sets
// podInfoOnMount: true) and one GET; publishes are rare, so no cache.
type PodGate struct {
	pods    kubernetes.Interface
	classes map[string]bool
	names   []string
}

// NewPodGate returns the gate; runtimeClasses are the peer-pod RuntimeClass
// names (DefaultRuntimeClass when empty), the same list the controller's
// reconciler uses.
func NewPodGate(pods kubernetes.Interface, runtimeClasses []string) (*PodGate, error) {
	if pods == nil {
		return nil, errors.New("the peer-pod node needs the Kubernetes API to check each pod's RuntimeClass")
	}
	if len(runtimeClasses) == 0 {
		runtimeClasses = []string{DefaultRuntimeClass}
	}
	g := &PodGate{pods: pods, classes: map[string]bool{}, names: append([]string(nil), runtimeClasses...)}
	for _, c := range runtimeClasses {
		g.classes[c] = true
	}
	return g, nil
}

// check returns nil when the publish is for a live peer pod, else the
// refusal: FailedPrecondition (no pod identity, or not a peer pod),
// Aborted (the pod was recreated under its name), Unavailable (the API
// could not answer; kubelet retries).
func (g *PodGate) check(ctx context.Context, volID string, vc map[string]string) error {
	namespace, name, uid := vc[kata.PodNamespaceKey], vc[kata.PodNameKey], vc[kata.PodUIDKey]
	if namespace == "" || name == "" {
		return errPrecondition("NodePublish of peer-pod volume %s carries no pod identity (the CSIDriver %s needs podInfoOnMount: true); refused, nothing written on the worker", volID, DriverName)
	}
	ref := namespace + "/" + name
	p, err := g.pods.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return errPrecondition("pod %s, which peer-pod volume %s is published for, does not exist; nothing written on the worker", ref, volID)
	case err != nil:
		return errWaiting("looking up pod %s to check its RuntimeClass before publishing peer-pod volume %s: %v; nothing written on the worker", ref, volID, err)
	case uid != "" && string(p.UID) != uid:
		return errAborted("pod %s has UID %s but kubelet publishes peer-pod volume %s for UID %s (the pod was recreated); nothing written on the worker", ref, p.UID, volID, uid)
	}
	rc := ""
	if p.Spec.RuntimeClassName != nil {
		rc = *p.Spec.RuntimeClassName
	}
	if !g.classes[rc] {
		return errPrecondition("pod %s has %s but peer-pod volume %s (%s) reaches only pods whose RuntimeClass is one of %v (the volume is attached to the pod's own VM; this pod would write to the worker's disk); refused, nothing written on the worker",
			ref, describeClass(rc), volID, DriverName, g.names)
	}
	return nil
}

func describeClass(rc string) string {
	if rc == "" {
		return "no RuntimeClass (runc)"
	}
	return fmt.Sprintf("RuntimeClass %q", rc)
}
