package main

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig returns the client config from --kubeconfig and --master, or
// the in-cluster one when both are empty, limited to --kube-api-qps and
// --kube-api-burst.
func restConfig(o *options) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if o.kubeconfig == "" && o.master == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	rc.QPS = float32(o.kubeAPIQPS)
	rc.Burst = o.kubeAPIBurst
	return rc, nil
}

// pvcAnnotationTTL: the provisioner calls CreateVolume for a PVC a few
// times at most (retries within minutes); a short cache spares the API
// server those repeats without serving stale annotations for long.
const pvcAnnotationTTL = 30 * time.Second

// pvcLookup reads PVC annotations for the affinity scheduler hints.
type pvcLookup struct {
	client kubernetes.Interface

	mu    sync.Mutex
	cache map[string]cachedAnnotations
}

type cachedAnnotations struct {
	at    time.Time
	value map[string]string
}

func newPVCLookup(o *options) (*pvcLookup, error) {
	rc, err := restConfig(o)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &pvcLookup{client: client, cache: map[string]cachedAnnotations{}}, nil
}

func (l *pvcLookup) Annotations(ctx context.Context, namespace, name string) (map[string]string, error) {
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
