package vmenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// FakeKube answers the three GETs the node plugin's Kata opt-in makes
// (its Node, a Pod, the Pod's RuntimeClass) from objects the test adds:
// the guest has no cluster to ask, and the opt-in logic itself is what
// runs.
type FakeKube struct {
	mu      sync.Mutex
	objects map[string]any // by URL path
}

func newFakeKube() *FakeKube { return &FakeKube{objects: map[string]any{}} }

// AddNode adds a Node with labels.
func (k *FakeKube) AddNode(name string, labels map[string]string) {
	k.put("/api/v1/nodes/"+name, &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
}

// AddPod adds a Pod running under a RuntimeClass.
func (k *FakeKube) AddPod(namespace, name, uid, runtimeClass string) {
	k.put("/api/v1/namespaces/"+namespace+"/pods/"+name, &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: uidOf(uid)},
		Spec:       corev1.PodSpec{RuntimeClassName: &runtimeClass}})
}

// AddRuntimeClass adds a RuntimeClass with its handler.
func (k *FakeKube) AddRuntimeClass(name, handler string) {
	k.put("/apis/node.k8s.io/v1/runtimeclasses/"+name, &nodev1.RuntimeClass{TypeMeta: metav1.TypeMeta{Kind: "RuntimeClass", APIVersion: "node.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler})
}

func (k *FakeKube) put(path string, obj any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.objects[path] = obj
}

func (k *FakeKube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	obj, ok := k.objects[strings.TrimSuffix(r.URL.Path, "/")]
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound, Message: r.URL.Path + " not found"})
		return
	}
	_ = json.NewEncoder(w).Encode(obj)
}

func uidOf(s string) types.UID { return types.UID(s) }
