package cinder

import (
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// The types: __DEFAULT__ and "gold" share the emulator's one backend;
// "remote" names another (volume_backend_name=remote), so retyping to it
// needs a migration; "multiattach" is a multiattach type.
func TestControllerModifyVolume(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *controllerEnv) string
		params   map[string]string
		code     codes.Code
		msg      string // in the error, when set
		wantType string // the volume's type afterwards ("" = not checked)
		mutating int64
	}{
		{
			name:   "available volume is retyped on its backend",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m1", 1) },
			params: map[string]string{"type": "gold"}, wantType: "gold", mutating: 1,
		},
		{
			name: "in-use volume is retyped and stays attached",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-m2", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			params: map[string]string{"type": "gold"}, wantType: "gold", mutating: 1,
		},
		{
			name:   "already that type: nothing to do",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m3", 1) },
			params: map[string]string{"type": "__DEFAULT__"}, wantType: "__DEFAULT__",
		},
		{
			name:   "another backend under migration-policy never is InvalidArgument, volume unchanged",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m4", 1) },
			params: map[string]string{"type": "remote"}, code: codes.InvalidArgument, msg: "migration-policy: on-demand",
			wantType: "__DEFAULT__", mutating: 1,
		},
		{
			name:   "another backend with migration-policy on-demand moves the volume",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m5", 1) },
			params: map[string]string{"type": "remote", "migration-policy": "on-demand"}, wantType: "remote", mutating: 1,
		},
		{
			name:   "unknown type is InvalidArgument before any change",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m6", 1) },
			params: map[string]string{"type": "platinum"}, code: codes.InvalidArgument, msg: `"platinum" does not exist`, wantType: "__DEFAULT__",
		},
		{
			name:   "unknown key is InvalidArgument",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m7", 1) },
			params: map[string]string{"type": "gold", "iops": "3000"}, code: codes.InvalidArgument, msg: `"iops"`, wantType: "__DEFAULT__",
		},
		{
			name:   "no type is InvalidArgument",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m8", 1) },
			params: map[string]string{"migration-policy": "never"}, code: codes.InvalidArgument, msg: "is required",
		},
		{
			name:   "bad migration policy is InvalidArgument",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m9", 1) },
			params: map[string]string{"type": "gold", "migration-policy": "always"}, code: codes.InvalidArgument, msg: "never or on-demand",
		},
		{
			name: "attached volume to a multiattach type is FailedPrecondition",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-m10", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			params: map[string]string{"type": "multiattach"}, code: codes.FailedPrecondition, wantType: "__DEFAULT__",
		},
		{
			name:   "missing volume is NotFound",
			setup:  func(*controllerEnv) string { return nodeGone },
			params: map[string]string{"type": "gold"}, code: codes.NotFound,
		},
		{
			name:   "missing volume with empty parameters is NotFound",
			setup:  func(*controllerEnv) string { return nodeGone },
			params: nil, code: codes.NotFound,
		},
		{
			name:   "missing volume is NotFound before its parameters are judged",
			setup:  func(*controllerEnv) string { return "non-existing-volume-id" },
			params: map[string]string{"XXX_FakeKey": "XXX_FakeValue"}, code: codes.NotFound,
		},
		{
			name:   "empty parameters change nothing and succeed",
			setup:  func(e *controllerEnv) string { return e.mustCreate("pvc-m13", 1) },
			params: map[string]string{}, wantType: "__DEFAULT__",
		},
		{
			name: "empty parameters on a volume created with a VolumeAttributesClass keep its type",
			setup: func(e *controllerEnv) string {
				req := createReq("pvc-m14", 1)
				req.MutableParameters = map[string]string{"type": "gold"}
				resp, err := e.cs.CreateVolume(e.ctx(), req)
				if err != nil {
					e.t.Fatal(err)
				}
				return resp.GetVolume().GetVolumeId()
			},
			params: nil, wantType: "gold",
		},
		{
			name: "still creating is Aborted",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-m12", 1)
				e.emu.SetVolumeStatus(id, "creating")
				return id
			},
			params: map[string]string{"type": "gold"}, code: codes.Aborted, wantType: "__DEFAULT__",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t)
			e.emu.AddVolumeType("gold", nil)
			e.emu.AddVolumeType("remote", map[string]string{"volume_backend_name": "remote"})
			id := tt.setup(e)
			e.warm()
			_, err := e.cs.ControllerModifyVolume(e.ctx(), &csi.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: tt.params})
			ctCode(t, err, tt.code)
			if tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("error %v does not say %q", err, tt.msg)
			}
			calls := e.calls()
			if m := mutating(calls); m != tt.mutating {
				t.Errorf("mutating calls = %d, want %d: %s", m, tt.mutating, formatCalls(calls))
			}
			if tt.wantType != "" {
				if v, _ := e.volume(id); v.VolumeType != tt.wantType {
					t.Errorf("volume type = %q, want %q", v.VolumeType, tt.wantType)
				}
			}
		})
	}
}

// A retype that outlives the deadline is Aborted; the retry waits for the
// same retype instead of asking again, and then succeeds.
func TestControllerModifyVolumeRetriedAfterDeadline(t *testing.T) {
	e := newControllerEnv(t)
	e.emu.AddVolumeType("gold", nil)
	id := e.mustCreate("pvc-slow-retype", 1)
	e.emu.SetLatency("volume_retype", 400*time.Millisecond)
	req := &csi.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: map[string]string{"type": "gold"}}
	_, err := e.cs.ControllerModifyVolume(e.shortCtx(50*time.Millisecond), req)
	ctCode(t, err, codes.Aborted)
	e.warm()
	if _, err := e.cs.ControllerModifyVolume(e.ctx(), req); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if m := mutating(e.calls()); m != 0 {
		t.Errorf("the retry made %d mutating calls, want 0", m)
	}
	if v, _ := e.volume(id); v.VolumeType != "gold" || v.Status != "available" {
		t.Errorf("volume = %s %s, want gold and available", v.VolumeType, v.Status)
	}
}

func TestCreateVolumeWithMutableParameters(t *testing.T) {
	e := newControllerEnv(t)
	e.emu.AddVolumeType("gold", nil)
	req := createReq("pvc-vac", 1)
	req.Parameters = map[string]string{"type": "__DEFAULT__"}
	req.MutableParameters = map[string]string{"type": "gold"}
	resp, err := e.cs.CreateVolume(e.ctx(), req)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := e.volume(resp.Volume.VolumeId); v.VolumeType != "gold" {
		t.Errorf("volume type = %q, want the VolumeAttributesClass's gold", v.VolumeType)
	}
	bad := createReq("pvc-vac-bad", 1)
	bad.MutableParameters = map[string]string{"throughput": "100"}
	_, err = e.cs.CreateVolume(e.ctx(), bad)
	ctCode(t, err, codes.InvalidArgument)
	if n := len(e.volumesNamed("pvc-vac-bad")); n != 0 {
		t.Errorf("%d volumes created for invalid mutable parameters", n)
	}
}
