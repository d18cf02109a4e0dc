package kata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
)

// The opt-in levels, all of which must agree before a publish takes the
// direct-volume path:
//  1. the driver flag (Options.Enabled);
//  2. the node: label or annotation NodeOptInLabel (key=value, default
//     DefaultNodeOptInLabel), read at start;
//  3. the StorageClass: parameter kataDirectVolume "false" opts out;
//  4. the pod: its RuntimeClass carries OptInKey=OptInValue, or its handler
//     starts with the configured prefix (and is not excluded).
const (
	OptInKey   = mountmode.Key
	OptInValue = mountmode.DirectVolume

	// VolumeContextKataDirectVolume is the StorageClass parameter the
	// controller passes through the volume context.
	VolumeContextKataDirectVolume = mountmode.ClassParameter

	// DefaultNodeOptInLabel is the node label (or annotation) that opts a
	// node in, as key=value.
	DefaultNodeOptInLabel = "cinder.csi.openstack.org/kata-direct-volumes=true"

	// DefaultRuntimeHandlerPrefix matches kata, kata-qemu, kata-clh, ...
	DefaultRuntimeHandlerPrefix = "kata"

	// Keys kubelet adds to NodePublish's volume context with podInfoOnMount.
	PodNameKey      = "csi.storage.k8s.io/pod.name"
	PodNamespaceKey = "csi.storage.k8s.io/pod.namespace"
	PodUIDKey       = "csi.storage.k8s.io/pod.uid"
	EphemeralKey    = "csi.storage.k8s.io/ephemeral"

	// DefaultLookupCacheTTL bounds how long a RuntimeClass decision is
	// reused. kubelet publishes a pod's volumes back to back and retries
	// failures after 0.5 s doubling, so one pod's publishes and first
	// retries land well inside 30 s, while an operator's RuntimeClass edit
	// is honoured for the next pod within half a minute.
	DefaultLookupCacheTTL = 30 * time.Second

	// maxCachedPods bounds the pod cache; kubelet's default max-pods is
	// 110, so the cache is simply dropped when it outgrows ten times that.
	maxCachedPods = 1100
)

// DefaultExcludedRuntimeHandlers match the prefix but are peer pods: their
// VM runs elsewhere, and cloud-api-adaptor would try to attach the device
// path of a record as a cloud disk.
var DefaultExcludedRuntimeHandlers = []string{"kata-remote"}

// LookupError is a failed Kubernetes API lookup. The publisher answers
// Unavailable so kubelet retries; it never falls back to a host mount.
type LookupError struct {
	What string
	Err  error
}

func (e *LookupError) Error() string { return fmt.Sprintf("looking up %s: %v", e.What, e.Err) }
func (e *LookupError) Unwrap() error { return e.Err }

// podFacts is what a publish needs from the Pod object. Everything in it is
// immutable for a pod's lifetime, so it is cached by UID.
type podFacts struct {
	uid                 string
	runtimeClassName    string
	fsGroup             *int64
	fsGroupChangePolicy string
	pod                 *corev1.Pod // for the subPath check
}

type classFacts struct {
	runtime Runtime
	reason  string
	fetched time.Time
}

// optIn decides whether a pod's publish goes to Kata.
type optIn struct {
	client        kubernetes.Interface
	handlerPrefix string
	excluded      map[string]bool
	ttl           time.Duration
	now           func() time.Time

	mu      sync.Mutex
	pods    map[string]*podFacts   // by pod UID
	classes map[string]*classFacts // by RuntimeClass name
}

func newOptIn(client kubernetes.Interface, prefix string, excluded []string, ttl time.Duration) *optIn {
	ex := map[string]bool{}
	for _, h := range excluded {
		ex[h] = true
	}
	return &optIn{
		client:        client,
		handlerPrefix: prefix,
		excluded:      ex,
		ttl:           ttl,
		now:           time.Now,
		pods:          map[string]*podFacts{},
		classes:       map[string]*classFacts{},
	}
}

// kubeClient builds the client: the injected one, else one from the given
// rest config, else from the in-cluster config.
func kubeClient(client kubernetes.Interface, cfg *rest.Config) (kubernetes.Interface, error) {
	if client != nil {
		return client, nil
	}
	if cfg == nil {
		var err error
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kata direct volumes need the Kubernetes API: %w", err)
		}
	}
	return kubernetes.NewForConfig(cfg)
}

// parseNodeOptIn splits a key=value node opt-in.
func parseNodeOptIn(kv string) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || key == "" || value == "" {
		return "", "", fmt.Errorf("node opt-in %q must be key=value", kv)
	}
	return key, value, nil
}

// nodeOptedIn reads the node's label or annotation once, at start.
func nodeOptedIn(ctx context.Context, client kubernetes.Interface, nodeName, kv string) (bool, error) {
	key, value, err := parseNodeOptIn(kv)
	if err != nil {
		return false, err
	}
	if nodeName == "" {
		return false, errors.New("kata direct volumes need the node name to read the node opt-in")
	}
	node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return false, &LookupError{What: "node " + nodeName, Err: err}
	}
	return node.Labels[key] == value || node.Annotations[key] == value, nil
}

// classOptOut reports whether the StorageClass opted out through the volume
// context. "true" or absence leave the decision to the pod.
func classOptOut(volumeContext map[string]string) (bool, error) {
	v, ok := volumeContext[VolumeContextKataDirectVolume]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("volume context %s=%q: must be true or false", VolumeContextKataDirectVolume, v)
	}
	return !b, nil
}

// podRef is the pod named by podInfoOnMount keys.
type podRef struct{ namespace, name, uid string }

func (r podRef) String() string { return r.namespace + "/" + r.name }

// podFromContext returns the pod, or ok=false when kubelet sent no pod info
// (podInfoOnMount off, or a CSI ephemeral volume).
func podFromContext(vc map[string]string) (podRef, bool) {
	r := podRef{namespace: vc[PodNamespaceKey], name: vc[PodNameKey], uid: vc[PodUIDKey]}
	if r.namespace == "" || r.name == "" {
		return r, false
	}
	return r, true
}

// pod returns the facts of the pod, fetching it when not cached. A pod with
// another UID than kubelet's is a recreated pod under the same name: the
// publish is for a pod that no longer exists, so it is a lookup failure.
func (o *optIn) pod(ctx context.Context, ref podRef) (*podFacts, error) {
	if ref.uid != "" {
		o.mu.Lock()
		pf := o.pods[ref.uid]
		o.mu.Unlock()
		if pf != nil {
			return pf, nil
		}
	}
	p, err := o.client.CoreV1().Pods(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
	if err != nil {
		return nil, &LookupError{What: "pod " + ref.String(), Err: err}
	}
	if ref.uid != "" && string(p.UID) != ref.uid {
		return nil, &LookupError{What: "pod " + ref.String(),
			Err: fmt.Errorf("UID is %s, kubelet publishes for %s (pod recreated)", p.UID, ref.uid)}
	}
	pf := &podFacts{uid: string(p.UID), pod: p}
	if p.Spec.RuntimeClassName != nil {
		pf.runtimeClassName = *p.Spec.RuntimeClassName
	}
	if sc := p.Spec.SecurityContext; sc != nil {
		pf.fsGroup = sc.FSGroup
		if sc.FSGroupChangePolicy != nil {
			pf.fsGroupChangePolicy = string(*sc.FSGroupChangePolicy)
		}
	}
	if pf.uid != "" {
		o.mu.Lock()
		if len(o.pods) >= maxCachedPods {
			o.pods = map[string]*podFacts{}
		}
		o.pods[pf.uid] = pf
		o.mu.Unlock()
	}
	return pf, nil
}

// runtimeClassVerdict decides by the RuntimeClass: the explicit annotation
// wins (any other value is an opt-out); else the handler prefix.
func (o *optIn) runtimeClassVerdict(ctx context.Context, name string) (Runtime, string, error) {
	o.mu.Lock()
	cf := o.classes[name]
	o.mu.Unlock()
	if cf != nil && o.now().Sub(cf.fetched) < o.ttl {
		return cf.runtime, cf.reason, nil
	}
	rc, err := o.client.NodeV1().RuntimeClasses().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return RuntimeNotKata, "", &LookupError{What: "RuntimeClass " + name, Err: err}
	}
	cf = &classFacts{fetched: o.now()}
	switch v, ok := rc.Annotations[OptInKey]; {
	case ok && v == OptInValue:
		cf.runtime, cf.reason = RuntimeKata, "RuntimeClass annotation "+OptInKey
	case ok:
		cf.runtime, cf.reason = RuntimeOptedOut, fmt.Sprintf("RuntimeClass annotation %s=%q opts out", OptInKey, v)
	case o.excluded[rc.Handler]:
		cf.runtime, cf.reason = RuntimeOptedOut, "handler "+rc.Handler+" is excluded (peer pods)"
	case o.handlerPrefix != "" && strings.HasPrefix(rc.Handler, o.handlerPrefix):
		cf.runtime, cf.reason = RuntimeKata, fmt.Sprintf("handler %s has prefix %q", rc.Handler, o.handlerPrefix)
	default:
		cf.runtime, cf.reason = RuntimeNotKata, "handler "+rc.Handler+" is not Kata"
	}
	o.mu.Lock()
	o.classes[name] = cf
	o.mu.Unlock()
	return cf.runtime, cf.reason, nil
}

// podRuntime runs the pod-level decision.
func (o *optIn) podRuntime(ctx context.Context, ref podRef) (Runtime, *podFacts, error) {
	pf, err := o.pod(ctx, ref)
	if err != nil {
		return RuntimeNotKata, nil, err
	}
	if pf.runtimeClassName == "" {
		return RuntimeNotKata, pf, nil
	}
	rt, reason, err := o.runtimeClassVerdict(ctx, pf.runtimeClassName)
	if err != nil {
		return RuntimeNotKata, pf, err
	}
	klog.V(4).InfoS("Kata direct-volume decision", "pod", ref.String(), "runtimeClass", pf.runtimeClassName, "kata", rt == RuntimeKata, "reason", reason)
	return rt, pf, nil
}

// subPathUser reports whether a container of the pod mounts the volume
// published at targetPath with subPath or subPathExpr. kubelet bind-mounts
// subpaths of the host directory, which is empty under Kata, so such a pod
// would silently see an empty directory. The PVC lookups only happen when
// the pod uses a subPath at all.
func (o *optIn) subPathUser(ctx context.Context, pf *podFacts, targetPath string) (bool, error) {
	p := pf.pod
	subPathVolumes := map[string]bool{}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" || m.SubPathExpr != "" {
					subPathVolumes[m.Name] = true
				}
			}
		}
	}
	for _, c := range p.Spec.EphemeralContainers {
		for _, m := range c.VolumeMounts {
			if m.SubPath != "" || m.SubPathExpr != "" {
				subPathVolumes[m.Name] = true
			}
		}
	}
	if len(subPathVolumes) == 0 {
		return false, nil
	}
	pvName := pvNameFromTarget(targetPath)
	for _, v := range p.Spec.Volumes {
		if !subPathVolumes[v.Name] {
			continue
		}
		claim := ""
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		case v.Ephemeral != nil:
			claim = p.Name + "-" + v.Name
		default:
			continue
		}
		if pvName == "" {
			return true, nil // cannot tell which volume this is: be safe
		}
		pvc, err := o.client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, &LookupError{What: "PersistentVolumeClaim " + p.Namespace + "/" + claim, Err: err}
		}
		if pvc.Spec.VolumeName == pvName {
			return true, nil
		}
	}
	return false, nil
}

// pvNameFromTarget extracts <pv> from kubelet's
// .../pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount layout.
func pvNameFromTarget(targetPath string) string {
	parts := strings.Split(strings.TrimSuffix(targetPath, "/"), "/")
	n := len(parts)
	if n >= 3 && parts[n-1] == "mount" && parts[n-3] == "kubernetes.io~csi" {
		return parts[n-2]
	}
	return ""
}
