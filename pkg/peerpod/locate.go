package peerpod

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// PeerPodGVR is cloud-api-adaptor's PeerPod resource (peerpod-ctrl's CRD):
// CAA creates one per pod VM after the VM exists, owned by the Pod, with
// the cloud instance id in spec.instanceID.
var PeerPodGVR = schema.GroupVersionResource{Group: "confidentialcontainers.org", Version: "v1alpha1", Resource: "peerpods"}

// PodRef names a pod; UID tells a recreated pod from its predecessor.
type PodRef struct{ Namespace, Name, UID string }

func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// Servers is what locating a pod VM asks of the cloud.
type Servers interface {
	GetServer(ctx context.Context, id string) (*openstack.Server, error)
	ListServersByName(ctx context.Context, name *regexp.Regexp) ([]openstack.Server, error)
}

// Locator finds the Nova server that is a pod's VM.
type Locator struct {
	// PeerPods reads PeerPod CRs; nil (or the CRD not installed) leaves
	// the instance name as the only way.
	PeerPods dynamic.Interface
}

// Locate returns the pod's VM, or nil when it does not exist (yet). The
// PeerPod CR owned by the pod's UID is authoritative when there is one; a
// CR without an instance id means the VM is not created yet. Otherwise the
// server named podvm-<pod>-<8 chars>; two such servers (a recreated pod's
// old VM not yet deleted) are refused rather than guessed between.
func (l *Locator) Locate(ctx context.Context, c Servers, pod PodRef) (*openstack.Server, error) {
	if id, found, err := l.instanceFromCR(ctx, pod); err != nil {
		return nil, err
	} else if found {
		if id == "" {
			return nil, nil
		}
		s, err := c.GetServer(ctx, id)
		if openstack.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fromCloud(err, "reading pod VM %s of pod %s", id, pod)
		}
		return s, nil
	}
	list, err := c.ListServersByName(ctx, InstanceNamePattern(pod.Name))
	if err != nil {
		return nil, fromCloud(err, "listing the VMs of pod %s", pod)
	}
	switch len(list) {
	case 0:
		return nil, nil
	case 1:
		return &list[0], nil
	}
	names := make([]string, 0, len(list))
	for _, s := range list {
		names = append(names, s.Name+" ("+s.ID+")")
	}
	return nil, errWaiting("pod %s has %d VMs (%s); waiting until the old one is deleted (install the PeerPod CRD to tell them apart by pod UID)",
		pod, len(list), strings.Join(names, ", "))
}

// instanceFromCR returns spec.instanceID of the PeerPod owned by the pod;
// found is false when there is none or the CRD is not installed.
func (l *Locator) instanceFromCR(ctx context.Context, pod PodRef) (id string, found bool, err error) {
	if l.PeerPods == nil || pod.UID == "" {
		return "", false, nil
	}
	list, err := l.PeerPods.Resource(PeerPodGVR).Namespace(pod.Namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil // no CRD
	}
	if err != nil {
		return "", false, errWaiting("listing PeerPods in namespace %s: %v", pod.Namespace, err)
	}
	for i := range list.Items {
		cr := &list.Items[i]
		if !ownedBy(cr, pod.UID) {
			continue
		}
		id, _, err := unstructured.NestedString(cr.Object, "spec", "instanceID")
		if err != nil {
			return "", false, errPrecondition("PeerPod %s/%s: spec.instanceID: %v", cr.GetNamespace(), cr.GetName(), err)
		}
		return id, true, nil
	}
	return "", false, nil
}

func ownedBy(obj *unstructured.Unstructured, uid string) bool {
	for _, o := range obj.GetOwnerReferences() {
		if string(o.UID) == uid {
			return true
		}
	}
	return false
}

// describe names a server for messages.
func describe(s *openstack.Server) string { return fmt.Sprintf("%s (%s, %s)", s.Name, s.ID, s.Status) }
