package cinder

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
)

// TestControllerCarriesTheKataMountAnnotation: the PVC's kata-mount
// annotation is read once at CreateVolume and carried in the volume
// context, including on the retry that adopts the volume; bad values and
// impossible combinations are refused with nothing created.
func TestControllerCarriesTheKataMountAnnotation(t *testing.T) {
	pvcs := fakePVCs{}
	peerPods := false
	e := newControllerEnv(t, withController(func(o *ControllerOptions) {
		o.PVCAnnotations = true
		o.PVCLookup = pvcs
	}))
	create := func(name, pvc string, class map[string]string) (map[string]string, error) {
		req := createReq(name, 1)
		req.Parameters = map[string]string{params.KeyPVCName: pvc, params.KeyPVCNamespace: "ns"}
		for k, v := range class {
			req.Parameters[k] = v
		}
		e.cs.opts.PeerPods = peerPods
		resp, err := e.cs.CreateVolume(e.ctx(), req)
		if err != nil {
			return nil, err
		}
		return resp.Volume.VolumeContext, nil
	}
	pvcs["ns/direct"] = map[string]string{mountmode.Key: mountmode.DirectVolume}
	pvcs["ns/host"] = map[string]string{mountmode.Key: mountmode.Host}
	pvcs["ns/bad"] = map[string]string{mountmode.Key: "virtio-fs"}
	pvcs["ns/plain"] = nil

	for _, name := range []string{"pvc-direct", "pvc-direct"} { // the second adopts
		vctx, err := create(name, "direct", nil)
		if err != nil || vctx[mountmode.VolumeContextKey] != mountmode.DirectVolume {
			t.Fatalf("%s: volume context %v, %v", name, vctx, err)
		}
	}
	if vctx, err := create("pvc-host", "host", map[string]string{params.KeyKataDirectVolume: "false"}); err != nil ||
		vctx[mountmode.VolumeContextKey] != mountmode.Host {
		t.Fatalf("host: volume context %v, %v", vctx, err)
	}
	if vctx, err := create("pvc-plain", "plain", nil); err != nil || vctx[mountmode.VolumeContextKey] != "" {
		t.Fatalf("no annotation: volume context %v, %v", vctx, err)
	}
	for _, tc := range []struct {
		name, pvc string
		class     map[string]string
		peerPods  bool
	}{
		{"pvc-bad", "bad", nil, false},
		{"pvc-conflict", "direct", map[string]string{params.KeyKataDirectVolume: "false"}, false},
		{"pvc-peer-host", "host", nil, true},
	} {
		peerPods = tc.peerPods
		_, err := create(tc.name, tc.pvc, tc.class)
		ctCode(t, err, codes.InvalidArgument)
		if n := len(e.volumesNamed(tc.name)); n != 0 {
			t.Fatalf("%s: %d volumes created for a refused annotation", tc.name, n)
		}
	}
}
