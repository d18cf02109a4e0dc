package cinder

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// TestControllerExpandVolume checks each branch of ControllerExpandVolume
// and the requests it sends, in order: the os-extend goes first, and the
// volume is read only when Cinder refused it.
func TestControllerExpandVolume(t *testing.T) {
	refusedThenRead := []string{"volume_extend 400", "volume_get 200"}
	tests := []struct {
		name       string
		envOpts    []envOption
		setup      func(e *controllerEnv) string
		toGiB      int64
		capability *csi.VolumeCapability
		code       codes.Code
		wantGiB    int
		nodeExpand bool
		sent       []string // requests other than polls, in order (a prefix when reasons are read)
	}{
		{
			name:  "available volume grows, filesystem needs the node",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-e1", 1) },
			toGiB: 3, wantGiB: 3, nodeExpand: true, sent: []string{"volume_extend 202"},
		},
		{
			name: "in-use volume grows at 3.42",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e2", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			toGiB: 2, wantGiB: 2, nodeExpand: true, sent: []string{"volume_extend 202"},
		},
		{
			name:    "in-use volume before 3.42 is FailedPrecondition",
			envOpts: []envOption{withEmulator(func(o *emulator.Options) { o.MaxCinderMicroversion = "3.40" })},
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e3", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			toGiB: 2, code: codes.FailedPrecondition, wantGiB: 1, sent: refusedThenRead,
		},
		{
			name:  "already large enough is success with the volume's size",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-e4", 4) },
			toGiB: 2, wantGiB: 4, nodeExpand: true, sent: refusedThenRead,
		},
		{
			name:       "block volume needs no node expansion",
			setup:      func(e *controllerEnv) string { return e.mustCreate("pvc-e5", 1) },
			capability: ctBlock(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			toGiB:      2, wantGiB: 2, nodeExpand: false, sent: []string{"volume_extend 202"},
		},
		{
			name:  "missing volume is NotFound",
			setup: func(*controllerEnv) string { return nodeGone },
			toGiB: 2, code: codes.NotFound, sent: []string{"volume_extend 404", "volume_get 404"},
		},
		{
			name:  "error_extending is FailedPrecondition",
			setup: inStatus("pvc-e7", "error_extending"),
			toGiB: 2, code: codes.FailedPrecondition, wantGiB: 1, sent: refusedThenRead,
		},
		{
			name:  "another error status is FailedPrecondition",
			setup: inStatus("pvc-e8", "error"),
			toGiB: 2, code: codes.FailedPrecondition, wantGiB: 1, sent: refusedThenRead,
		},
		{
			name:  "a volume changing state is Aborted",
			setup: inStatus("pvc-e9", "backing-up"),
			toGiB: 2, code: codes.Aborted, wantGiB: 1, sent: refusedThenRead,
		},
		{
			name: "over quota is ResourceExhausted, nothing read",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e10", 1)
				e.emu.SetQuota("demo", 1, -1, -1, -1)
				return id
			},
			toGiB: 2, code: codes.ResourceExhausted, wantGiB: 1, sent: []string{"volume_extend 413"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t, tt.envOpts...)
			id := tt.setup(e)
			e.warm()
			capability := tt.capability
			if capability == nil {
				capability = rwo
			}
			resp, err := e.cs.ControllerExpandVolume(e.ctx(), &csi.ControllerExpandVolumeRequest{
				VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: tt.toGiB * gib}, VolumeCapability: capability,
			})
			ctCode(t, err, tt.code)
			if err == nil {
				if resp.CapacityBytes != int64(tt.wantGiB)*gib || resp.NodeExpansionRequired != tt.nodeExpand {
					t.Errorf("response = %v, want %d GiB and node expansion %v", resp, tt.wantGiB, tt.nodeExpand)
				}
			}
			e.assertSent(tt.sent)
			if tt.wantGiB > 0 {
				if v, _ := e.volume(id); v.SizeGiB != tt.wantGiB {
					t.Errorf("volume size = %d GiB, want %d", v.SizeGiB, tt.wantGiB)
				}
			}
		})
	}
}

// An extend an earlier call started (the resizer retrying after Aborted)
// is waited for, not refused: Cinder refuses the second os-extend of an
// `extending` volume, and the volume is read to tell why.
func TestControllerExpandVolumeWaitsForRunningExtend(t *testing.T) {
	e := newControllerEnv(t)
	id := e.mustCreate("pvc-ew", 1)
	e.emu.SetLatency("volume_extend", time.Second)
	req := &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 3 * gib}, VolumeCapability: rwo}
	_, err := e.cs.ControllerExpandVolume(e.shortCtx(100*time.Millisecond), req)
	ctCode(t, err, codes.Aborted)
	e.ops.reset()
	resp, err := e.cs.ControllerExpandVolume(e.ctx(), req)
	if err != nil {
		t.Fatalf("ControllerExpandVolume retried: %v", err)
	}
	if resp.CapacityBytes != 3*gib {
		t.Errorf("capacity = %d, want 3 GiB", resp.CapacityBytes)
	}
	e.assertSent([]string{"volume_extend 400", "volume_get 200"})
	if _, polls := e.ops.sent(); polls == 0 {
		t.Errorf("the running extend was not waited for: %s", e.ops.all())
	}
}

// An os-extend answered 500 is reconciled by the volume's size (GET) and
// sent again: each volume extended once, answered with its real size.
func TestControllerExpandVolumeRetriedPost(t *testing.T) {
	e := newControllerEnv(t)
	e.warm()
	e.emu.SetFaults(emulator.Faults{ErrorRate: 0.5, OnlyPaths: []string{"POST /volume/v3/{project_id}/volumes/{volume_id}/action"}})
	defer e.emu.SetFaults(emulator.Faults{})
	// The emulator's seeded rng answers 500 within a few requests.
	for i := 0; i < 10 && !strings.Contains(e.ops.all(), "volume_extend 500"); i++ {
		id := e.mustCreate(fmt.Sprintf("pvc-er-%d", i), 1)
		resp, err := e.cs.ControllerExpandVolume(e.ctx(), &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 2*gib + 1}, VolumeCapability: rwo})
		if err != nil {
			t.Fatalf("ControllerExpandVolume with faults: %v (requests %s)", err, e.ops.all())
		}
		if v, _ := e.volume(id); resp.CapacityBytes != 3*gib || v.SizeGiB != 3 {
			t.Errorf("capacity = %d, volume %d GiB; want 3 GiB both", resp.CapacityBytes, v.SizeGiB)
		}
	}
	if !strings.Contains(e.ops.all(), "volume_extend 500") {
		t.Fatalf("no os-extend was answered 500: the test checked nothing; requests %s", e.ops.all())
	}
}

// extendRefusedCloud answers whyNotExtended's GET with a volume that can be
// extended after all: a state the refusal saw has passed since.
type extendRefusedCloud struct {
	openstack.Cloud // nil: any other call panics
	vol             *openstack.Volume
}

func (f extendRefusedCloud) GetVolume(context.Context, string) (*openstack.Volume, error) {
	return f.vol, nil
}

func TestWhyNotExtendedAfterTheStateChanged(t *testing.T) {
	refusal := &openstack.Error{Kind: openstack.KindConflict, Op: "volume_extend", Message: "Volume status must be available to extend, currently attaching."}
	c := extendRefusedCloud{vol: &openstack.Volume{ID: "v", Status: openstack.VolumeAvailable, SizeGiB: 1}}
	_, err := whyNotExtended(context.Background(), c, "v", 2, refusal)
	ctCode(t, err, codes.Aborted)
	if err == nil || !strings.Contains(err.Error(), "currently attaching") {
		t.Errorf("error %v does not carry Cinder's refusal", err)
	}
}

// inStatus makes a 1 GiB volume and puts it in status, for the refusal
// cases.
func inStatus(name, status string) func(*controllerEnv) string {
	return func(e *controllerEnv) string {
		id := e.mustCreate(name, 1)
		e.emu.SetVolumeStatus(id, status)
		return id
	}
}
