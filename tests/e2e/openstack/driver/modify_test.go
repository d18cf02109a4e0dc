package driver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// modify runs ControllerModifyVolume on real Cinder: a VolumeAttributesClass
// at creation, a retype back to the default type while available and to a
// new type while attached, and a type whose backend does not exist under
// migration-policy never (Cinder reverts it; the answer is InvalidArgument
// and the volume is unchanged). The types are made as admin and removed
// with the volume.
func (s *suite) modify(t *testing.T) {
	ctx, cancel := s.ctx()
	defer cancel()
	var typeIDs []string
	newType := func(name string, specs map[string]string) string {
		t.Helper()
		body := map[string]any{"name": s.tag + "-" + name}
		if specs != nil {
			body["extra_specs"] = specs
		}
		r, err := s.adm.Do(ctx, rig.Volume, "POST", "/types", "3.0", map[string]any{"volume_type": body})
		if err != nil || r.Status != 200 {
			t.Fatalf("creating type %s: %v %v", name, err, r)
		}
		typeIDs = append(typeIDs, str(r.JSON()["volume_type"], "id"))
		return s.tag + "-" + name
	}
	gold := newType("gold", nil)
	silver := newType("silver", nil)
	remote := newType("remote", map[string]string{"volume_backend_name": "no-such-backend-e2e"})
	cinderType := func(id string) string {
		r, err := s.raw.Do(ctx, rig.Volume, "GET", "/volumes/"+id, "3.0", nil)
		if err != nil || r.Status != 200 {
			t.Fatalf("GET volume %s: %v %v", id, err, r)
		}
		return str(r.JSON()["volume"], "volume_type")
	}
	modify := func(id string, params map[string]string) (time.Duration, error) {
		start := time.Now()
		_, err := s.cc.ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: params})
		return time.Since(start), err
	}

	resp, err := s.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: s.tag + "-vac", CapacityRange: &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap("xfs")}, MutableParameters: map[string]string{"type": gold}})
	if err != nil {
		t.Fatalf("CreateVolume with a VolumeAttributesClass: %v", err)
	}
	id := resp.Volume.VolumeId
	s.vols[id] = true
	if got := cinderType(id); got != gold {
		t.Errorf("created with type %q, want the class's %q", got, gold)
	}
	took, err := modify(id, map[string]string{"type": silver})
	if err != nil || cinderType(id) != silver {
		t.Fatalf("retype available volume: %v, type %q", err, cinderType(id))
	}
	t.Logf("retype of an available volume took %v", took)
	if took, err := modify(id, map[string]string{"type": silver}); err != nil {
		t.Errorf("repeat: %v", err)
	} else {
		t.Logf("repeat (already that type) took %v", took)
	}
	_, err = modify(id, map[string]string{"type": remote})
	wantCode(t, "retype to a type whose backend does not exist, policy never", err, codes.InvalidArgument)
	if got := cinderType(id); got != silver {
		t.Errorf("after the refused retype the type is %q, want %q", got, silver)
	}

	if _, err := s.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: s.env.Node2, VolumeCapability: mountCap("xfs")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	took, err = modify(id, map[string]string{"type": gold})
	if err != nil || cinderType(id) != gold {
		t.Errorf("retype in-use volume: %v, type %q", err, cinderType(id))
	} else {
		t.Logf("retype of an in-use volume took %v", took)
	}
	s.expectCinder(t, id, "in-use", 1)
	if _, err := s.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: s.env.Node2}); err != nil {
		t.Fatalf("unpublish: %v", err)
	}
	if _, err := s.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	delete(s.vols, id)
	for _, tid := range typeIDs {
		if r, err := s.adm.Do(context.Background(), rig.Volume, "DELETE", "/types/"+tid, "3.0", nil); err != nil || r.Status != 202 {
			t.Errorf("deleting type %s: %v", tid, fmt.Sprint(err, r))
		}
	}
}
