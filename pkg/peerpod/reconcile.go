package peerpod

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

const (
	// DefaultRuntimeClass is cloud-api-adaptor's RuntimeClass.
	DefaultRuntimeClass = "kata-remote"
	// DefaultResync is the pass period. Kubelet creates the sandbox (and CAA the VM) within
	// seconds of scheduling, and CAA's in-VM agent waits 30 s for the disk
	// by default, so a pass every 5 s starts each attach early enough.
	DefaultResync = 5 * time.Second
	// DefaultAttachTimeout bounds one attach, VM boot included: CAA's
	// OpenStack VMs boot in 30-90 s under TCG on the rig; a slower VM is
	// picked up again by the next pass.
	DefaultAttachTimeout = 3 * time.Minute
)

// The reasons of the Events the reconciler leaves on pods, the
// user-visible side of its errors.
const (
	EventReasonAttached     = "PeerPodVolumeAttached"
	EventReasonAttachFailed = "PeerPodVolumeAttachFailed"
	EventReasonRefused      = "PeerPodVolumeRefused"
)

// ReconcilerOptions configure a Reconciler.
type ReconcilerOptions struct {
	// DriverName selects the PVs the reconciler owns (default DriverName).
	DriverName string
	// RuntimeClasses are the peer-pod RuntimeClass names (default
	// kata-remote).
	RuntimeClasses []string
	AttachTimeout  time.Duration
}

// Reconciler makes attachments follow the peer pods: every volume of a
// running peer pod attached to that pod's VM, every other peer-pod volume
// attached nowhere. Each pass reads the PVs of the driver, the pods that
// use them and the volumes' Cinder attachments; it never trusts memory, so
// a restart converges like any pass.
type Reconciler struct {
	kube     kubernetes.Interface
	attacher *Attacher
	opts     ReconcilerOptions
	classes  map[string]bool
	events   *eventSink
}

// NewReconciler returns a reconciler.
func NewReconciler(kube kubernetes.Interface, a *Attacher, o ReconcilerOptions) *Reconciler {
	if o.DriverName == "" {
		o.DriverName = DriverName
	}
	if len(o.RuntimeClasses) == 0 {
		o.RuntimeClasses = []string{DefaultRuntimeClass}
	}
	if o.AttachTimeout <= 0 {
		o.AttachTimeout = DefaultAttachTimeout
	}
	classes := map[string]bool{}
	for _, c := range o.RuntimeClasses {
		classes[c] = true
	}
	return &Reconciler{kube: kube, attacher: a, opts: o, classes: classes, events: &eventSink{kube: kube}}
}

// Run runs a pass every resync until ctx ends.
func (r *Reconciler) Run(ctx context.Context, resync time.Duration) {
	if resync <= 0 {
		resync = DefaultResync
	}
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Peer-pod reconcile pass failed; the next pass retries")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// want is one volume's desired holder.
type want struct {
	volumeID string
	pod      *corev1.Pod
}

// Pass runs one reconcile: it works out the desired holder of every
// peer-pod volume, then attaches, detaches and frees all volumes at once,
// and returns when every action finished (each attach is bounded by
// AttachTimeout).
func (r *Reconciler) Pass(ctx context.Context) error {
	volumes, err := r.volumesByClaim(ctx)
	if err != nil {
		return err
	}
	pods, err := r.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	desired := r.desired(ctx, volumes, pods.Items)
	var wg sync.WaitGroup
	for _, volID := range allVolumes(volumes) {
		wg.Add(1)
		go func(volID string) {
			defer wg.Done()
			r.converge(ctx, volID, desired[volID])
		}(volID)
	}
	wg.Wait()
	return nil
}

// volumesByClaim maps namespace/claim to the Cinder volume id of every
// bound PV of the driver.
func (r *Reconciler) volumesByClaim(ctx context.Context) (map[string]string, error) {
	pvs, err := r.kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing persistent volumes: %w", err)
	}
	out := map[string]string{}
	for _, pv := range pvs.Items {
		csiSrc := pv.Spec.CSI
		if csiSrc == nil || csiSrc.Driver != r.opts.DriverName || pv.Spec.ClaimRef == nil {
			continue
		}
		out[pv.Spec.ClaimRef.Namespace+"/"+pv.Spec.ClaimRef.Name] = csiSrc.VolumeHandle
	}
	return out, nil
}

func allVolumes(byClaim map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range byClaim {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// desired picks the pod that should hold each volume: a live peer pod
// using the claim. With two (ReadWriteOncePod keeps that from happening
// through the scheduler, but a pod of a runtime we do not serve, or a
// static PV bound twice, can still try), the oldest keeps it and the
// others get a Refused event. A pod of another runtime never gets it.
func (r *Reconciler) desired(ctx context.Context, byClaim map[string]string, pods []corev1.Pod) map[string]want {
	sort.Slice(pods, func(i, j int) bool {
		return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
	})
	out := map[string]want{}
	for i := range pods {
		p := &pods[i]
		if !podLive(p) {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			volID, ok := byClaim[p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName]
			if !ok {
				continue
			}
			if rc := p.Spec.RuntimeClassName; rc == nil || !r.classes[*rc] {
				r.events.warn(ctx, p, EventReasonRefused, "volume %s of claim %s is a peer-pod volume (%s); it reaches only pods whose RuntimeClass is one of %v",
					volID, v.PersistentVolumeClaim.ClaimName, r.opts.DriverName, r.opts.RuntimeClasses)
				continue
			}
			if holder, taken := out[volID]; taken {
				r.events.warn(ctx, p, EventReasonRefused, "volume %s is held by pod %s/%s; a peer-pod volume goes to one pod VM at a time (ReadWriteOncePod)",
					volID, holder.pod.Namespace, holder.pod.Name)
				continue
			}
			out[volID] = want{volumeID: volID, pod: p}
		}
	}
	return out
}

// podLive: scheduled, not finished, not being deleted. A pod being deleted
// gives its volume up: CAA deletes its VM, and the detach must not wait for
// that.
func podLive(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.DeletionTimestamp == nil &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// converge makes one volume's attachments match w (w.pod nil: none).
func (r *Reconciler) converge(ctx context.Context, volID string, w want) {
	vol, err := r.attacher.cloud.GetVolume(ctx, volID)
	if err != nil {
		if !openstack.IsNotFound(err) {
			klog.ErrorS(err, "Peer-pod reconcile: reading volume", "volumeID", volID)
		}
		return
	}
	var target *openstack.Server
	if w.pod != nil {
		pod := PodRef{Namespace: w.pod.Namespace, Name: w.pod.Name, UID: string(w.pod.UID)}
		// Locate without waiting: the holder's VM, if it exists now.
		if target, err = r.attacher.locator.Locate(ctx, r.attacher.cloud, pod); err != nil {
			klog.ErrorS(err, "Peer-pod reconcile: locating the pod VM", "volumeID", volID, "pod", pod.String())
		}
	}
	for _, att := range vol.Attachments {
		if target != nil && att.ServerID == target.ID {
			continue
		}
		r.detachUnwanted(ctx, volID, att)
	}
	if w.pod == nil || (target != nil && attachedTo(vol, target.ID)) {
		return
	}
	r.attach(ctx, volID, w.pod)
}

func attachedTo(vol *openstack.Volume, serverID string) bool {
	for _, a := range vol.Attachments {
		if a.ServerID == serverID {
			return vol.Status == openstack.VolumeInUse
		}
	}
	return false
}

// detachUnwanted detaches a volume from a server that should not hold it:
// a pod VM whose pod is gone, or a server that no longer exists. A live
// server that is not a pod VM (a worker, someone's VM) is left alone and
// reported: the peer-pod driver never attached it there.
func (r *Reconciler) detachUnwanted(ctx context.Context, volID string, att openstack.VolumeAttachment) {
	s, err := r.attacher.cloud.GetServer(ctx, att.ServerID)
	switch {
	case openstack.IsNotFound(err):
		err = r.attacher.deleteAttachment(ctx, volID, att)
	case err != nil:
	case !IsPodVMName(s.Name):
		klog.InfoS("Peer-pod volume attached to a server that is not a pod VM; leaving it", "volumeID", volID, "server", describe(s))
		return
	default:
		err = r.attacher.Detach(ctx, volID, s.ID)
		if err == nil {
			klog.InfoS("Detached peer-pod volume from a pod VM whose pod is gone", "volumeID", volID, "server", describe(s))
		}
	}
	if err != nil {
		klog.ErrorS(err, "Peer-pod reconcile: detaching", "volumeID", volID, "server", att.ServerID)
	}
}

func (r *Reconciler) attach(ctx context.Context, volID string, p *corev1.Pod) {
	actx, cancel := context.WithTimeout(ctx, r.opts.AttachTimeout)
	defer cancel()
	pod := PodRef{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)}
	vm, err := r.attacher.Attach(actx, pod, volID)
	if err != nil {
		klog.ErrorS(err, "Peer-pod attach failed", "volumeID", volID, "pod", pod.String())
		r.events.warn(ctx, p, EventReasonAttachFailed, "attaching volume %s to the pod VM: %v", volID, err)
		return
	}
	r.events.normal(ctx, p, EventReasonAttached, "volume %s attached to pod VM %s (%s)", volID, vm.Name, vm.ID)
}
