package kata

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
)

// TestMountChoiceTable is the whole table of how the StorageClass, the PVC
// annotation and the RuntimeClass combine (docs/kata.md prints it).
func TestMountChoiceTable(t *testing.T) {
	const refused = "refused"
	for _, tc := range []struct {
		classOptOut bool
		pvc         string
		runtime     Runtime
		want        string // "direct", "host" or refused
	}{
		{false, "", RuntimeKata, "direct"},
		{false, "", RuntimeNotKata, "host"},
		{false, "", RuntimeOptedOut, "host"},
		{false, OptInValue, RuntimeKata, "direct"},
		{false, OptInValue, RuntimeNotKata, refused},
		{false, OptInValue, RuntimeOptedOut, refused},
		{false, MountHost, RuntimeKata, "host"},
		{false, MountHost, RuntimeNotKata, "host"},
		{false, MountHost, RuntimeOptedOut, "host"},
		{true, "", RuntimeKata, "host"},
		{true, "", RuntimeNotKata, "host"},
		{true, "", RuntimeOptedOut, "host"},
		{true, OptInValue, RuntimeKata, refused},
		{true, OptInValue, RuntimeNotKata, refused},
		{true, OptInValue, RuntimeOptedOut, refused},
		{true, MountHost, RuntimeKata, "host"},
		{true, MountHost, RuntimeNotKata, "host"},
		{true, MountHost, RuntimeOptedOut, "host"},
	} {
		direct, refusal := MountChoice(tc.classOptOut, tc.pvc, tc.runtime)
		got := "host"
		switch {
		case refusal != "":
			got = refused
		case direct:
			got = "direct"
		}
		if got != tc.want {
			t.Errorf("class opt-out %v, PVC %q, runtime %d: %s (%s), want %s", tc.classOptOut, tc.pvc, tc.runtime, got, refusal, tc.want)
		}
	}
}

func TestCheckClassAndPVC(t *testing.T) {
	for _, tc := range []struct {
		class, pvc string
		ok         bool
	}{
		{"", "", true}, {"", OptInValue, true}, {"", MountHost, true},
		{"false", MountHost, true}, {"true", OptInValue, true},
		{"false", OptInValue, false}, {"", "virtio-fs", false},
	} {
		if err := mountmode.CheckClassAndPVC(tc.class, tc.pvc); (err == nil) != tc.ok {
			t.Errorf("class %q PVC %q: %v, want ok=%v", tc.class, tc.pvc, err, tc.ok)
		}
	}
}

// TestWantsWithThePVCAnnotation runs the table's rows through Wants with
// real RuntimeClasses on the fake API server.
func TestWantsWithThePVCAnnotation(t *testing.T) {
	p, api := optInEnv(t, true, nodeOptedInLabel, nil)
	pvc := func(v string) func(*csi.NodePublishVolumeRequest) {
		return func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[VolumeContextKataMount] = v }
	}
	classOff := func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[VolumeContextKataDirectVolume] = "false" }
	for _, tc := range []struct {
		name    string
		req     *csi.NodePublishVolumeRequest
		expect  bool
		refused bool
	}{
		{"PVC direct-volume, Kata pod", wantsReq("kata-qemu", pvc(OptInValue)), true, false},
		{"PVC direct-volume, runc pod is refused", wantsReq("runc", pvc(OptInValue)), false, true},
		{"PVC direct-volume, no RuntimeClass is refused", wantsReq("default", pvc(OptInValue)), false, true},
		{"PVC direct-volume, RuntimeClass says host is refused", wantsReq("kata-hostmount", pvc(OptInValue)), false, true},
		{"PVC direct-volume, peer pod handler is refused", wantsReq("kata-remote", pvc(OptInValue)), false, true},
		{"PVC host, Kata pod gets the host mount", wantsReq("kata-qemu", pvc(MountHost)), false, false},
		{"PVC host, annotated RuntimeClass", wantsReq("gvisor-annotated", pvc(MountHost)), false, false},
		{"PVC direct-volume against a StorageClass opt-out", wantsReq("kata-qemu", pvc(OptInValue), classOff), false, true},
		{"PVC direct-volume without pod info", wantsReq("kata-qemu", pvc(OptInValue), func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext = map[string]string{VolumeContextKataMount: OptInValue}
		}), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Wants(context.Background(), tc.req)
			if tc.refused {
				if k, _ := kataerr.KindOf(err); err == nil || k != kataerr.Precondition {
					t.Fatalf("Wants = %v, %v; want a precondition refusal", got, err)
				}
				return
			}
			if err != nil || got != tc.expect {
				t.Fatalf("Wants = %v, %v; want %v", got, err, tc.expect)
			}
		})
	}
	if n := api.count(podPath("ns", "pod-kata-qemu")); n > 1 {
		t.Errorf("pod fetched %d times; the pod facts are cached by UID", n)
	}
}

func TestWantsRefusesADemandTheNodeCannotMeet(t *testing.T) {
	for name, enabled := range map[string]bool{"flag off": false, "node not opted in": true} {
		t.Run(name, func(t *testing.T) {
			p, _ := optInEnv(t, enabled, nil, nil)
			req := wantsReq("kata-qemu", func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[VolumeContextKataMount] = OptInValue })
			if _, err := p.Wants(context.Background(), req); err == nil {
				t.Fatal("a PVC demanding a direct volume was host-mounted on a node that cannot give one")
			}
			req.VolumeContext[VolumeContextKataMount] = "nonsense"
			if _, err := p.Wants(context.Background(), req); err == nil {
				t.Fatal("a bad kata-mount value passed")
			}
		})
	}
}
