// Package kubeclient holds the plugins' few Kubernetes API uses: the client
// config from the shared flags, PVC annotation lookups (--pvc-annotations),
// and for the Manila controller the Secrets that carry cephx keys and the
// CSINode check behind "node not found".
package kubeclient

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
)

// RestConfig returns the client config from --kubeconfig and --master, or
// the in-cluster one when both are empty, limited to --kube-api-qps and
// --kube-api-burst.
func RestConfig(k cliflag.Kube) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if k.Kubeconfig == "" && k.Master == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags(k.Master, k.Kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	rc.QPS = float32(k.QPS)
	rc.Burst = k.Burst
	return rc, nil
}

// Client returns a clientset for the flags.
func Client(k cliflag.Kube) (kubernetes.Interface, error) {
	rc, err := RestConfig(k)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// pvcAnnotationTTL: the provisioner calls CreateVolume for a PVC a few
// times at most (retries within minutes); a short cache spares the API
// server those repeats without serving stale annotations for long.
const pvcAnnotationTTL = 30 * time.Second

// PVCLookup reads PVC annotations for the affinity scheduler hints.
type PVCLookup struct {
	client kubernetes.Interface

	mu    sync.Mutex
	cache map[string]cachedAnnotations
}

type cachedAnnotations struct {
	at    time.Time
	value map[string]string
}

// NewPVCLookup returns a lookup over client.
func NewPVCLookup(client kubernetes.Interface) *PVCLookup {
	return &PVCLookup{client: client, cache: map[string]cachedAnnotations{}}
}

// Annotations returns the PVC's annotations, cached for pvcAnnotationTTL.
func (l *PVCLookup) Annotations(ctx context.Context, namespace, name string) (map[string]string, error) {
	key := namespace + "/" + name
	l.mu.Lock()
	if c, ok := l.cache[key]; ok && time.Since(c.at) < pvcAnnotationTTL {
		l.mu.Unlock()
		return c.value, nil
	}
	l.mu.Unlock()
	pvc, err := l.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.cache[key] = cachedAnnotations{at: time.Now(), value: pvc.Annotations}
	l.mu.Unlock()
	return pvc.Annotations, nil
}
