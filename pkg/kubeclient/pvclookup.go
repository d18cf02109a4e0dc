package kubeclient

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// pvcAnnotationTTL: the provisioner calls CreateVolume for a PVC a few
// times at most (retries within minutes); a short cache spares the API
// server those repeats without serving stale annotations for long.
const pvcAnnotationTTL = 30 * time.Second

// maxCachedPVCs bounds the cache whatever the create rate: an entry takes
// a PVC's annotations (a few hundred bytes), so the cap is under a few MiB.
// At the default --kube-api-qps 5 at most 150 lookups fit in one TTL, so
// the cap only matters with a raised QPS; past it a lookup is not cached.
const maxCachedPVCs = 4096

// PVCLookup reads PVC annotations for the affinity scheduler hints. It
// caches each PVC's annotations for pvcAnnotationTTL; expired entries are
// dropped whenever a new one is stored, so the cache holds at most the
// PVCs looked up within one TTL (and never more than maxCachedPVCs).
type PVCLookup struct {
	client kubernetes.Interface
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedAnnotations
}

type cachedAnnotations struct {
	at    time.Time
	value map[string]string
}

// NewPVCLookup returns a lookup over client.
func NewPVCLookup(client kubernetes.Interface) *PVCLookup {
	return &PVCLookup{client: client, now: time.Now, cache: map[string]cachedAnnotations{}}
}

// Annotations returns the PVC's annotations, cached for pvcAnnotationTTL.
func (l *PVCLookup) Annotations(ctx context.Context, namespace, name string) (map[string]string, error) {
	key := namespace + "/" + name
	l.mu.Lock()
	if c, ok := l.cache[key]; ok && l.now().Sub(c.at) < pvcAnnotationTTL {
		l.mu.Unlock()
		return c.value, nil
	}
	l.mu.Unlock()
	pvc, err := l.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	l.store(key, pvc.Annotations)
	return pvc.Annotations, nil
}

// store caches one PVC's annotations after dropping the expired entries.
// The sweep runs only on a miss, which costs an API call anyway.
func (l *PVCLookup) store(key string, value map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k, c := range l.cache {
		if now.Sub(c.at) >= pvcAnnotationTTL {
			delete(l.cache, k)
		}
	}
	if _, ok := l.cache[key]; ok || len(l.cache) < maxCachedPVCs {
		l.cache[key] = cachedAnnotations{at: now, value: value}
	}
}

// cached is the number of entries held, for tests.
func (l *PVCLookup) cached() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cache)
}
