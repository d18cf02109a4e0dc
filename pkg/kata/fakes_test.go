package kata

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeAPI is a Kubernetes API server on httptest serving Nodes, Pods,
// RuntimeClasses and PVCs as JSON, consumed through real client-go.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	objects map[string]any // request path -> object
	fail    map[string]int // request path -> HTTP status to answer
	calls   map[string]int // request path -> GETs served
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, objects: map[string]any{}, fail: map[string]int{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls[r.URL.Path]++
	obj, ok := f.objects[r.URL.Path]
	code := f.fail[r.URL.Path]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if code != 0 {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: "Failure", Code: int32(code), Message: "injected failure"})
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: "Failure", Code: 404, Reason: metav1.StatusReasonNotFound, Message: r.URL.Path + " not found"})
		return
	}
	_ = json.NewEncoder(w).Encode(obj)
}

func (f *fakeAPI) client() kubernetes.Interface {
	c, err := kubernetes.NewForConfig(&rest.Config{Host: f.srv.URL})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fakeAPI) set(path string, obj any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[path] = obj
}

func (f *fakeAPI) remove(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, path)
}

func (f *fakeAPI) failWith(path string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[path] = code
}

func (f *fakeAPI) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func nodePath(name string) string    { return "/api/v1/nodes/" + name }
func podPath(ns, name string) string { return "/api/v1/namespaces/" + ns + "/pods/" + name }
func pvcPath(ns, name string) string {
	return "/api/v1/namespaces/" + ns + "/persistentvolumeclaims/" + name
}
func runtimeClassPath(name string) string { return "/apis/node.k8s.io/v1/runtimeclasses/" + name }

func (f *fakeAPI) addNode(name string, labels, annotations map[string]string) {
	f.set(nodePath(name), &corev1.Node{
		TypeMeta:   metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
	})
}

func (f *fakeAPI) addRuntimeClass(name, handler string, annotations map[string]string) {
	f.set(runtimeClassPath(name), &nodev1.RuntimeClass{
		TypeMeta:   metav1.TypeMeta{Kind: "RuntimeClass", APIVersion: "node.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Handler:    handler,
	})
}

// testPod is a pod in namespace "ns" with one PVC volume "data".
func testPod(name, uid, runtimeClass string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox",
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim"}}}},
		},
	}
	if runtimeClass != "" {
		p.Spec.RuntimeClassName = &runtimeClass
	}
	return p
}

func (f *fakeAPI) addPod(p *corev1.Pod) { f.set(podPath(p.Namespace, p.Name), p) }

func (f *fakeAPI) addPVC(ns, name, pvName string) {
	f.set(pvcPath(ns, name), &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{Kind: "PersistentVolumeClaim", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: pvName},
	})
}

// podContext is the volume context kubelet sends with podInfoOnMount.
func podContext(name, uid string) map[string]string {
	return map[string]string{
		PodNameKey: name, PodNamespaceKey: "ns", PodUIDKey: uid,
		"csi.storage.k8s.io/serviceAccount.name": "default", EphemeralKey: "false",
	}
}

// fakeShim serves a Kata shim's management API on a unix socket at
// <dir>/<sandboxID>/shim-monitor.sock.
type fakeShim struct {
	mu     sync.Mutex
	paths  []string // unescaped ?path= values received
	status int
	body   string
}

func startFakeShim(t *testing.T, dir, sandboxID string, status int, body string) *fakeShim {
	t.Helper()
	sockDir := filepath.Join(dir, sandboxID)
	if err := os.MkdirAll(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, shimSocketName)
	if len(sock) >= 108 {
		t.Fatalf("socket path %s too long for a unix socket", sock)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeShim{status: status, body: body}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+statsURLPath, func(w http.ResponseWriter, r *http.Request) {
		// The Go shim reads the query value and path-unescapes it again.
		raw := r.URL.Query().Get("path")
		p, err := url.PathUnescape(raw)
		if err != nil || p == "" {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.paths = append(s.paths, p)
		s.mu.Unlock()
		w.WriteHeader(s.status)
		fmt.Fprint(w, s.body)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *fakeShim) queried() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// shortTempDir is a temp dir short enough for unix socket paths.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "ks")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// loopDevice is a real loop device backed by a sparse file.
type loopDevice struct {
	node string // /dev/loopN
	link string // a by-id style symlink to it, as the node server passes
}

// needRoot skips tests that need root and loop devices.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup")
	}
}

func newLoopDevice(t *testing.T, sizeMiB int, volumeID string) *loopDevice {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("loop devices unavailable: %v: %s", err, out)
	}
	node := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", node).Run() })
	byID := filepath.Join(dir, "dev", "disk", "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(byID, "virtio-"+shortVolumeID(volumeID))
	if err := os.Symlink(node, link); err != nil {
		t.Fatal(err)
	}
	return &loopDevice{node: node, link: link}
}

func shortVolumeID(id string) string {
	if len(id) > 20 {
		return id[:20]
	}
	return id
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// stage formats the device and mounts it at staging, as NodeStage does.
func stage(t *testing.T, dev *loopDevice, fstype, staging string) {
	t.Helper()
	if fstype == "xfs" {
		run(t, "mkfs.xfs", "-q", "-f", dev.node)
	} else {
		run(t, "mkfs."+fstype, "-q", "-F", dev.node)
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", fstype, dev.node, staging)
	t.Cleanup(func() { unmountAllAt(staging) })
}

// unmountAllAt removes every mount stacked at path (test cleanup).
func unmountAllAt(path string) {
	for i := 0; i < 8; i++ {
		if exec.Command("umount", path).Run() != nil {
			return
		}
	}
}
