package cinder

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestControllerExpandVolume(t *testing.T) {
	tests := []struct {
		name       string
		envOpts    []envOption
		setup      func(e *controllerEnv) string
		toGiB      int64
		capability *csi.VolumeCapability
		code       codes.Code
		wantGiB    int
		nodeExpand bool
		mutating   int64
	}{
		{
			name:  "available volume grows, filesystem needs the node",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-e1", 1) },
			toGiB: 3, wantGiB: 3, nodeExpand: true, mutating: 1,
		},
		{
			name: "in-use volume grows at 3.42",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e2", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			toGiB: 2, wantGiB: 2, nodeExpand: true, mutating: 1,
		},
		{
			name:    "in-use volume before 3.42 is FailedPrecondition",
			envOpts: []envOption{withEmulator(func(o *emulator.Options) { o.MaxCinderMicroversion = "3.40" })},
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e3", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			toGiB: 2, code: codes.FailedPrecondition, wantGiB: 1,
		},
		{
			name:  "already large enough returns at once",
			setup: func(e *controllerEnv) string { return e.mustCreate("pvc-e4", 4) },
			toGiB: 2, wantGiB: 4, nodeExpand: true,
		},
		{
			name:       "block volume needs no node expansion",
			setup:      func(e *controllerEnv) string { return e.mustCreate("pvc-e5", 1) },
			capability: ctBlock(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			toGiB:      2, wantGiB: 2, nodeExpand: false, mutating: 1,
		},
		{
			name:  "missing volume is NotFound",
			setup: func(*controllerEnv) string { return nodeGone },
			toGiB: 2, code: codes.NotFound,
		},
		{
			name: "error_extending is FailedPrecondition",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-e7", 1)
				e.emu.SetVolumeStatus(id, "error_extending")
				return id
			},
			toGiB: 2, code: codes.FailedPrecondition, wantGiB: 1,
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
			calls := e.calls()
			if m := mutating(calls); m != tt.mutating {
				t.Errorf("mutating calls = %d, want %d: %s", m, tt.mutating, formatCalls(calls))
			}
			if tt.wantGiB > 0 {
				if v, _ := e.volume(id); v.SizeGiB != tt.wantGiB {
					t.Errorf("volume size = %d GiB, want %d", v.SizeGiB, tt.wantGiB)
				}
			}
		})
	}
}
