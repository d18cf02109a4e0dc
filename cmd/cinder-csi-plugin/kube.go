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

// restConfig returns the kubeconfig's client config, or the in-cluster one
// when path is empty.
func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", path)
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

func newPVCLookup(kubeconfig string) (*pvcLookup, error) {
	rc, err := restConfig(kubeconfig)
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
