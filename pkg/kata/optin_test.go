package kata

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
)

const testNode = "node-1"

// optInEnv is a publisher on node-1 with the fake API server; nodeMeta
// sets how the node opts in.
func optInEnv(t *testing.T, enabled bool, nodeLabels, nodeAnnotations map[string]string) (*Publisher, *fakeAPI) {
	t.Helper()
	api := newFakeAPI(t)
	api.addNode(testNode, nodeLabels, nodeAnnotations)
	api.addRuntimeClass("kata-qemu", "kata-qemu", nil)
	api.addRuntimeClass("kata-remote", "kata-remote", nil)
	api.addRuntimeClass("runc", "runc", nil)
	api.addRuntimeClass("gvisor-annotated", "runsc", map[string]string{OptInKey: OptInValue})
	api.addRuntimeClass("kata-hostmount", "kata-clh", map[string]string{OptInKey: "host"})
	for _, rc := range []string{"kata-qemu", "kata-remote", "runc", "gvisor-annotated", "kata-hostmount"} {
		api.addPod(testPod("pod-"+rc, "uid-"+rc, rc))
	}
	api.addPod(testPod("pod-default", "uid-default", ""))
	p, err := New(context.Background(), Options{
		Enabled: enabled, NodeName: testNode, KubeClient: api.client(),
		RecordRoot: t.TempDir(), RuntimeHandlerPrefix: DefaultRuntimeHandlerPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, api
}

var nodeOptedInLabel = map[string]string{"cinder.csi.openstack.org/kata-direct-volumes": "true"}

func wantsReq(pod string, mutate ...func(*csi.NodePublishVolumeRequest)) *csi.NodePublishVolumeRequest {
	req := &csi.NodePublishVolumeRequest{
		VolumeId:          testVolumeID,
		StagingTargetPath: "/staging",
		TargetPath:        "/var/lib/kubelet/pods/uid-" + pod + "/volumes/kubernetes.io~csi/pv-1/mount",
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		},
		VolumeContext: podContext("pod-"+pod, "uid-"+pod),
	}
	for _, m := range mutate {
		m(req)
	}
	return req
}

func TestWantsCombinesTheOptIns(t *testing.T) {
	p, _ := optInEnv(t, true, nodeOptedInLabel, nil)
	for _, tc := range []struct {
		name   string
		req    *csi.NodePublishVolumeRequest
		expect bool
	}{
		{"kata handler prefix", wantsReq("kata-qemu"), true},
		{"RuntimeClass annotation on a non-kata handler", wantsReq("gvisor-annotated"), true},
		{"RuntimeClass annotation with another value opts out", wantsReq("kata-hostmount"), false},
		{"peer pods excluded", wantsReq("kata-remote"), false},
		{"runc", wantsReq("runc"), false},
		{"no RuntimeClass", wantsReq("default"), false},
		{"StorageClass opt-out", wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[VolumeContextKataDirectVolume] = "false"
		}), false},
		{"StorageClass true leaves it to the pod", wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[VolumeContextKataDirectVolume] = "true"
		}), true},
		{"raw block reaches the guest as a device anyway", wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}), false},
		{"no pod info (podInfoOnMount off)", wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext = nil
		}), false},
		{"CSI ephemeral", wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[EphemeralKey] = "true"
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Wants(context.Background(), tc.req)
			if err != nil || got != tc.expect {
				t.Fatalf("Wants = %v, %v; want %v", got, err, tc.expect)
			}
		})
	}
}

func TestWantsNeedsTheDriverFlagAndTheNode(t *testing.T) {
	for name, tc := range map[string]struct {
		enabled           bool
		labels, annots    map[string]string
		expect            bool
		expectNodeFetched bool
	}{
		"flag off":             {false, nodeOptedInLabel, nil, false, false},
		"node not opted in":    {true, nil, nil, false, true},
		"node label":           {true, nodeOptedInLabel, nil, true, true},
		"node annotation":      {true, nil, nodeOptedInLabel, true, true},
		"node label other val": {true, map[string]string{"cinder.csi.openstack.org/kata-direct-volumes": "false"}, nil, false, true},
		"RuntimeClass key on the node does not count": {true, map[string]string{OptInKey: OptInValue}, nil, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			p, api := optInEnv(t, tc.enabled, tc.labels, tc.annots)
			got, err := p.Wants(context.Background(), wantsReq("kata-qemu"))
			if err != nil || got != tc.expect {
				t.Fatalf("Wants = %v, %v; want %v", got, err, tc.expect)
			}
			if n := api.count(nodePath(testNode)); (n == 1) != tc.expectNodeFetched || n > 1 {
				t.Fatalf("node fetched %d times", n)
			}
			if !tc.expect && api.count(podPath("ns", "pod-kata-qemu")) != 0 {
				t.Fatal("pod looked up although the driver or node did not opt in")
			}
		})
	}
}

func TestCustomNodeOptInLabel(t *testing.T) {
	api := newFakeAPI(t)
	api.addNode(testNode, map[string]string{"example.com/kata": "yes"}, nil)
	api.addRuntimeClass("kata-qemu", "kata-qemu", nil)
	api.addPod(testPod("pod-kata-qemu", "uid-kata-qemu", "kata-qemu"))
	p, err := New(context.Background(), Options{Enabled: true, NodeName: testNode, KubeClient: api.client(),
		RecordRoot: t.TempDir(), RuntimeHandlerPrefix: "kata", NodeOptInLabel: "example.com/kata=yes"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Wants(context.Background(), wantsReq("kata-qemu")); !ok || err != nil {
		t.Fatalf("Wants = %v, %v", ok, err)
	}
	if _, err := New(context.Background(), Options{Enabled: true, NodeName: testNode, KubeClient: api.client(),
		RecordRoot: t.TempDir(), NodeOptInLabel: "novalue"}); err == nil {
		t.Fatal("New accepted a node opt-in without a value")
	}
}

func TestNodeNotReadableAtStartIsRetriedOnPublish(t *testing.T) {
	// The Node may not be registered yet when the plugin starts; the plugin
	// must still start (a crash loop would block every mount on the node)
	// and answer Unavailable until it can read the opt-in.
	_, api := optInEnv(t, true, nodeOptedInLabel, nil)
	api.remove(nodePath(testNode))
	fresh, err := New(context.Background(), Options{
		Enabled: true, NodeName: testNode, KubeClient: api.client(),
		RecordRoot: t.TempDir(), RuntimeHandlerPrefix: DefaultRuntimeHandlerPrefix,
	})
	if err != nil {
		t.Fatalf("New failed without the node: %v", err)
	}
	got, err := fresh.Wants(context.Background(), wantsReq("kata-qemu"))
	wantCode(t, err, codes.Unavailable, "opt-in")
	if got {
		t.Fatal("Wants true before the node opt-in was read")
	}
	api.addNode(testNode, nodeOptedInLabel, nil)
	if ok, err := fresh.Wants(context.Background(), wantsReq("kata-qemu")); !ok || err != nil {
		t.Fatalf("Wants after the node appeared = %v, %v", ok, err)
	}
}

func TestNewRefusesAMissingNodeName(t *testing.T) {
	api := newFakeAPI(t)
	if _, err := New(context.Background(), Options{Enabled: true, KubeClient: api.client(), RecordRoot: t.TempDir()}); err == nil {
		t.Fatal("New succeeded without a node name")
	}
}

func TestLookupFailuresAreUnavailable(t *testing.T) {
	for name, breakIt := range map[string]func(api *fakeAPI){
		"pod API error":          func(api *fakeAPI) { api.failWith(podPath("ns", "pod-kata-qemu"), http.StatusInternalServerError) },
		"pod forbidden (RBAC)":   func(api *fakeAPI) { api.failWith(podPath("ns", "pod-kata-qemu"), http.StatusForbidden) },
		"pod gone":               func(api *fakeAPI) { api.remove(podPath("ns", "pod-kata-qemu")) },
		"pod recreated":          func(api *fakeAPI) { api.addPod(testPod("pod-kata-qemu", "uid-new", "kata-qemu")) },
		"RuntimeClass API error": func(api *fakeAPI) { api.failWith(runtimeClassPath("kata-qemu"), http.StatusServiceUnavailable) },
	} {
		t.Run(name, func(t *testing.T) {
			p, api := optInEnv(t, true, nodeOptedInLabel, nil)
			breakIt(api)
			got, err := p.Wants(context.Background(), wantsReq("kata-qemu"))
			wantCode(t, err, codes.Unavailable, "pod ns/pod-kata-qemu")
			if got {
				t.Fatal("Wants true on a lookup failure")
			}
		})
	}
}

func TestLookupsAreCached(t *testing.T) {
	p, api := optInEnv(t, true, nodeOptedInLabel, nil)
	now := time.Unix(1000, 0)
	p.optIn.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, err := p.Wants(context.Background(), wantsReq("kata-qemu")); !ok || err != nil {
			t.Fatalf("Wants = %v, %v", ok, err)
		}
	}
	if n, m := api.count(podPath("ns", "pod-kata-qemu")), api.count(runtimeClassPath("kata-qemu")); n != 1 || m != 1 {
		t.Fatalf("pod fetched %d times, RuntimeClass %d times; want 1 and 1", n, m)
	}
	// An operator edits the RuntimeClass: honoured once the TTL passed.
	api.addRuntimeClass("kata-qemu", "kata-qemu", map[string]string{OptInKey: "host"})
	now = now.Add(DefaultLookupCacheTTL - time.Second)
	if ok, _ := p.Wants(context.Background(), wantsReq("kata-qemu")); !ok {
		t.Fatal("cached decision not used within the TTL")
	}
	now = now.Add(2 * time.Second)
	if ok, _ := p.Wants(context.Background(), wantsReq("kata-qemu")); ok {
		t.Fatal("RuntimeClass edit not honoured after the TTL")
	}
}

func TestAnExistingRecordIsTheDecision(t *testing.T) {
	p, api := optInEnv(t, true, nil, nil) // node not opted in (any more)
	req := wantsReq("runc")
	if err := p.store.Write(req.TargetPath, testRecord()); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Wants(context.Background(), req); !ok || err != nil {
		t.Fatalf("Wants = %v, %v; a retry must finish the publication it started", ok, err)
	}
	if api.count(podPath("ns", "pod-runc")) != 0 {
		t.Fatal("pod looked up for a target that already has a record")
	}
}

func TestSubPathIsRefused(t *testing.T) {
	p, api := optInEnv(t, true, nodeOptedInLabel, nil)
	pod := testPod("pod-sub", "uid-sub", "kata-qemu")
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "other", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "other-claim"}}})
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "data", MountPath: "/data", SubPath: "sub"},
		{Name: "other", MountPath: "/other", SubPathExpr: "$(POD)"},
	}
	api.addPod(pod)
	api.addPVC("ns", "claim", "pv-1")
	api.addPVC("ns", "other-claim", "pv-2")

	// pv-1 is the "data" volume, mounted with subPath.
	_, err := p.Publish(context.Background(), wantsReq("sub"), "/dev/null")
	wantCode(t, err, codes.FailedPrecondition, "subPath")

	// Another pod volume with subPath does not make pv-3 unusable.
	req := wantsReq("sub", func(r *csi.NodePublishVolumeRequest) {
		r.TargetPath = "/var/lib/kubelet/pods/uid-sub/volumes/kubernetes.io~csi/pv-3/mount"
	})
	_, err = p.Publish(context.Background(), req, "/dev/null")
	wantCode(t, err, codes.FailedPrecondition, "not a block device") // got past the subPath check

	// A PVC lookup failure is a lookup failure.
	api.failWith(pvcPath("ns", "claim"), http.StatusInternalServerError)
	p.optIn.pods = map[string]*podFacts{}
	_, err = p.Publish(context.Background(), wantsReq("sub"), "/dev/null")
	wantCode(t, err, codes.Unavailable, "PersistentVolumeClaim ns/claim")
}

func TestPVNameFromTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount":  "pvc-1",
		"/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount/": "pvc-1",
		"/somewhere/else": "",
	} {
		if got := pvNameFromTarget(in); got != want {
			t.Errorf("pvNameFromTarget(%q) = %q, want %q", in, got, want)
		}
	}
}
