package cinder

import (
	"fmt"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestControllerListVolumesAcrossClouds pages through two clouds (the
// emulator's two projects) with a page size that does not divide either.
func TestControllerListVolumesAcrossClouds(t *testing.T) {
	e := newControllerEnv(t, withSecondCloud())
	for i := range 3 {
		e.mustCreate(fmt.Sprintf("pvc-l%d", i), 1)
	}
	for i := range 2 {
		req := createReq(fmt.Sprintf("pvc-second-%d", i), 1)
		req.Secrets = map[string]string{SecretCloudKey: "second"}
		if _, err := e.cs.CreateVolume(e.ctx(), req); err != nil {
			t.Fatalf("CreateVolume in second cloud: %v", err)
		}
	}
	published := e.volumesNamed("pvc-l0")[0].ID
	e.mustPublish(published, nodeA)

	seen := map[string][]string{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		resp, err := e.cs.ListVolumes(e.ctx(), &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatalf("ListVolumes: %v", err)
		}
		if len(resp.Entries) > 2 {
			t.Fatalf("page of %d, max 2", len(resp.Entries))
		}
		for _, en := range resp.Entries {
			if _, dup := seen[en.Volume.VolumeId]; dup {
				t.Fatalf("volume %s listed twice", en.Volume.VolumeId)
			}
			seen[en.Volume.VolumeId] = en.Status.PublishedNodeIds
		}
		if token = resp.NextToken; token == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d volumes, want 5", len(seen))
	}
	if nodes := seen[published]; len(nodes) != 1 || nodes[0] != nodeA {
		t.Fatalf("published nodes of %s = %v, want [%s]", published, nodes, nodeA)
	}
	all, err := e.cs.ListVolumes(e.ctx(), &csi.ListVolumesRequest{})
	if err != nil || len(all.Entries) != 5 || all.NextToken != "" {
		t.Fatalf("ListVolumes without a limit = %d entries, token %q, %v", len(all.GetEntries()), all.GetNextToken(), err)
	}
	_, err = e.cs.ListVolumes(e.ctx(), &csi.ListVolumesRequest{StartingToken: "garbage"})
	ctCode(t, err, codes.Aborted)
	_, err = e.cs.ListVolumes(e.ctx(), &csi.ListVolumesRequest{MaxEntries: -1})
	ctCode(t, err, codes.InvalidArgument)

	// ControllerGetVolume has no secrets: it finds a second-cloud volume too.
	second := e.volumesNamed("pvc-second-1")[0].ID
	got, err := e.cs.ControllerGetVolume(e.ctx(), &csi.ControllerGetVolumeRequest{VolumeId: second})
	if err != nil || got.Volume.VolumeId != second {
		t.Fatalf("ControllerGetVolume(second cloud) = %v, %v", got, err)
	}
	got, err = e.cs.ControllerGetVolume(e.ctx(), &csi.ControllerGetVolumeRequest{VolumeId: published})
	if err != nil || len(got.Status.PublishedNodeIds) != 1 {
		t.Fatalf("ControllerGetVolume(published) = %v, %v", got, err)
	}
	_, err = e.cs.ControllerGetVolume(e.ctx(), &csi.ControllerGetVolumeRequest{VolumeId: nodeGone})
	ctCode(t, err, codes.NotFound)
}

func TestControllerValidateVolumeCapabilities(t *testing.T) {
	e := newControllerEnv(t)
	plain := e.mustCreate("pvc-v1", 1)
	r := createReq("pvc-v2", 1)
	r.Parameters = map[string]string{"type": multiType}
	r.VolumeCapabilities = []*csi.VolumeCapability{ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	resp, err := e.cs.CreateVolume(e.ctx(), r)
	if err != nil {
		t.Fatal(err)
	}
	multi := resp.Volume.VolumeId

	tests := []struct {
		name      string
		volID     string
		caps      []*csi.VolumeCapability
		params    map[string]string
		mutable   map[string]string
		code      codes.Code
		confirmed bool
	}{
		{name: "RWO mount on a plain volume", volID: plain, caps: []*csi.VolumeCapability{rwo}, confirmed: true},
		{name: "RWOP", volID: plain, caps: []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)}, confirmed: true},
		{name: "RWX block on a plain volume", volID: plain, caps: []*csi.VolumeCapability{ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}},
		{name: "RWX block on a multiattach volume", volID: multi, caps: []*csi.VolumeCapability{ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}, confirmed: true},
		{name: "RWX mount on a multiattach volume", volID: multi, caps: []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}},
		{name: "no access type", volID: plain, caps: []*csi.VolumeCapability{{AccessMode: rwo.AccessMode}}},
		{name: "bad parameters", volID: plain, caps: []*csi.VolumeCapability{rwo}, params: map[string]string{"nope": "1"}},
		{name: "valid mutable parameters", volID: plain, caps: []*csi.VolumeCapability{rwo}, mutable: map[string]string{"type": ssdType}, confirmed: true},
		{name: "unknown mutable parameter", volID: plain, caps: []*csi.VolumeCapability{rwo}, mutable: map[string]string{"iops": "3000"}},
		{name: "missing volume", volID: nodeGone, caps: []*csi.VolumeCapability{rwo}, code: codes.NotFound},
		{name: "no capabilities", volID: plain, code: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.cs.ValidateVolumeCapabilities(e.ctx(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: tt.volID, VolumeCapabilities: tt.caps, Parameters: tt.params, MutableParameters: tt.mutable})
			ctCode(t, err, tt.code)
			if err != nil {
				return
			}
			if got := resp.Confirmed != nil; got != tt.confirmed {
				t.Fatalf("confirmed = %v (message %q), want %v", got, resp.Message, tt.confirmed)
			}
			if !tt.confirmed && resp.Message == "" {
				t.Fatal("unconfirmed without a message")
			}
		})
	}
}

func TestControllerGetCapacity(t *testing.T) {
	e := newControllerEnv(t)
	e.emu.SetQuota("demo", 100, 10, 10, 10)
	e.mustCreate("pvc-c1", 30)
	resp, err := e.cs.GetCapacity(e.ctx(), &csi.GetCapacityRequest{})
	if err != nil {
		t.Fatalf("GetCapacity: %v", err)
	}
	if resp.AvailableCapacity != 70*gib {
		t.Fatalf("available = %d GiB, want 70", resp.AvailableCapacity/gib)
	}
	_, err = e.cs.GetCapacity(e.ctx(), &csi.GetCapacityRequest{Parameters: map[string]string{"bogus": "x"}})
	ctCode(t, err, codes.InvalidArgument)
}

func TestControllerVolumeHealth(t *testing.T) {
	e := newControllerEnv(t)
	healthy := e.mustCreate("pvc-h1", 1)
	e.mustPublish(healthy, nodeA)
	broken := e.mustCreate("pvc-h2", 1)
	e.emu.SetVolumeStatus(broken, "error")

	resp, err := e.cs.ControllerGetVolumeHealth(e.ctx(), &csi.ControllerGetVolumeHealthRequest{VolumeId: healthy})
	if err != nil || len(resp.VolumeHealth.HealthStatuses) != 0 {
		t.Fatalf("health of an attached healthy volume = %v, %v", resp, err)
	}
	resp, err = e.cs.ControllerGetVolumeHealth(e.ctx(), &csi.ControllerGetVolumeHealthRequest{VolumeId: broken})
	if err != nil || len(resp.VolumeHealth.HealthStatuses) != 1 || resp.VolumeHealth.HealthStatuses[0].Status != csi.VolumeHealthErrorType_INACCESSIBLE {
		t.Fatalf("health of an error volume = %v, %v", resp, err)
	}
	_, err = e.cs.ControllerGetVolumeHealth(e.ctx(), &csi.ControllerGetVolumeHealthRequest{VolumeId: nodeGone})
	ctCode(t, err, codes.NotFound)

	list, err := e.cs.ControllerListVolumeHealth(e.ctx(), &csi.ControllerListVolumeHealthRequest{})
	if err != nil || len(list.Entries) != 1 || list.Entries[0].VolumeId != broken {
		t.Fatalf("ControllerListVolumeHealth = %v, %v; want only %s", list, err, broken)
	}
}
