package cinder

import (
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestControllerPublishVolume(t *testing.T) {
	tests := []struct {
		name     string
		envOpts  []envOption
		setup    func(e *controllerEnv) (volID, node string)
		capacity *csi.VolumeCapability
		code     codes.Code
		mutating int64
		calls    int64 // polls counted once; -1 = not checked
		attached []string
	}{
		{
			name:     "attach and wait for in-use",
			setup:    func(e *controllerEnv) (string, string) { return e.mustCreate("pvc-pub", 1), nodeA },
			mutating: 1, calls: 2, attached: []string{nodeA},
		},
		{
			name: "same node again makes no mutating call",
			setup: func(e *controllerEnv) (string, string) {
				id := e.mustCreate("pvc-pub-again", 1)
				e.mustPublish(id, nodeA)
				return id, nodeA
			},
			mutating: 0, calls: 1, attached: []string{nodeA},
		},
		{
			name: "a second node for a non-multiattach volume is FailedPrecondition",
			setup: func(e *controllerEnv) (string, string) {
				id := e.mustCreate("pvc-pub-other", 1)
				e.mustPublish(id, nodeA)
				return id, nodeB
			},
			code: codes.FailedPrecondition, mutating: 0, calls: 1, attached: []string{nodeA},
		},
		{
			name: "a second node for a multiattach block volume is attached",
			setup: func(e *controllerEnv) (string, string) {
				r := createReq("pvc-multi", 1)
				r.VolumeCapabilities = []*csi.VolumeCapability{ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
				r.Parameters = map[string]string{"type": multiType}
				resp, err := e.cs.CreateVolume(e.ctx(), r)
				if err != nil {
					e.t.Fatal(err)
				}
				id := resp.Volume.VolumeId
				if _, err := e.cs.ControllerPublishVolume(e.ctx(), &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: nodeA, VolumeCapability: r.VolumeCapabilities[0]}); err != nil {
					e.t.Fatal(err)
				}
				return id, nodeB
			},
			capacity: ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
			mutating: 1, calls: 2, attached: []string{nodeA, nodeB},
		},
		{
			name:     "MULTI_NODE on a plain volume is InvalidArgument",
			setup:    func(e *controllerEnv) (string, string) { return e.mustCreate("pvc-plain", 1), nodeA },
			capacity: ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
			code:     codes.InvalidArgument, mutating: 0, calls: 1,
		},
		{
			name:  "missing volume is NotFound",
			setup: func(*controllerEnv) (string, string) { return nodeGone, nodeA },
			code:  codes.NotFound, mutating: 0, calls: 1,
		},
		{
			name:  "missing node is NotFound",
			setup: func(e *controllerEnv) (string, string) { return e.mustCreate("pvc-nonode", 1), nodeGone },
			code:  codes.NotFound, mutating: 1, calls: 2,
		},
		{
			name: "a volume in error is FailedPrecondition",
			setup: func(e *controllerEnv) (string, string) {
				id := e.mustCreate("pvc-err", 1)
				e.emu.SetVolumeStatus(id, "error")
				return id, nodeA
			},
			code: codes.FailedPrecondition, mutating: 0, calls: 1,
		},
		{
			name: "Nova's device limit is ResourceExhausted",
			// The root disk takes one of two slots; the first volume the other.
			envOpts: []envOption{withEmulator(func(o *emulator.Options) { o.MaxDevicesPerServer = 2 })},
			setup: func(e *controllerEnv) (string, string) {
				e.mustPublish(e.mustCreate("pvc-fill", 1), nodeA)
				return e.mustCreate("pvc-over", 1), nodeA
			},
			code: codes.ResourceExhausted, mutating: 1, calls: 2, attached: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t, tt.envOpts...)
			volID, node := tt.setup(e)
			e.warm()
			capability := tt.capacity
			if capability == nil {
				capability = rwo
			}
			resp, err := e.cs.ControllerPublishVolume(e.ctx(), &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: node, VolumeCapability: capability})
			ctCode(t, err, tt.code)
			calls := e.calls()
			if m := mutating(calls); m != tt.mutating {
				t.Errorf("mutating calls = %d, want %d: %s", m, tt.mutating, formatCalls(calls))
			}
			if tt.calls >= 0 && distinct(calls) != tt.calls {
				t.Errorf("API calls (polls once) = %d, want %d: %s", distinct(calls), tt.calls, formatCalls(calls))
			}
			if err == nil && resp.PublishContext[PublishContextDevicePath] == "" {
				t.Errorf("publish context %v has no %s", resp.PublishContext, PublishContextDevicePath)
			}
			if tt.attached != nil {
				v, _ := e.volume(volID)
				if len(v.Attachments) != len(tt.attached) {
					t.Errorf("attached to %v, want %v", v.Attachments, tt.attached)
				}
			}
		})
	}
}

func TestControllerUnpublishVolume(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *controllerEnv) (volID, node string)
		mutating int64
	}{
		{name: "missing volume succeeds", setup: func(*controllerEnv) (string, string) { return nodeGone, nodeA }},
		{name: "missing node succeeds", setup: func(e *controllerEnv) (string, string) { return e.mustCreate("pvc-u1", 1), nodeGone }},
		{name: "already detached succeeds", setup: func(e *controllerEnv) (string, string) { return e.mustCreate("pvc-u2", 1), nodeA }},
		{
			name: "attached volume is detached and waited for",
			setup: func(e *controllerEnv) (string, string) {
				id := e.mustCreate("pvc-u3", 1)
				e.mustPublish(id, nodeA)
				return id, nodeA
			},
			mutating: 1,
		},
		{
			name: "empty node id detaches from every node",
			setup: func(e *controllerEnv) (string, string) {
				id := e.mustCreate("pvc-u4", 1)
				e.mustPublish(id, nodeA)
				return id, ""
			},
			mutating: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t)
			volID, node := tt.setup(e)
			e.warm()
			_, err := e.cs.ControllerUnpublishVolume(e.ctx(), &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: node})
			ctCode(t, err, codes.OK)
			if m := mutating(e.calls()); m != tt.mutating {
				t.Errorf("mutating calls = %d, want %d: %s", m, tt.mutating, formatCalls(e.calls()))
			}
			if n := len(e.emu.Attachments()); n != 0 {
				t.Errorf("%d attachments left", n)
			}
		})
	}
}

// TestControllerStuckAttachIsRecoveredByUnpublishThenPublish: an attach that
// stays in "attaching" makes publish answer Aborted at the deadline (no
// second attach on retry); unpublish removes the stuck attachment through
// Nova; the next publish attaches.
func TestControllerStuckAttachIsRecoveredByUnpublishThenPublish(t *testing.T) {
	for _, fault := range []emulator.Faults{{StuckAttaching: true}, {StuckReserved: true}} {
		name := "attaching"
		if fault.StuckReserved {
			name = "reserved"
		}
		t.Run(name, func(t *testing.T) {
			e := newControllerEnv(t)
			volID := e.mustCreate("pvc-stuck", 1)
			e.emu.SetFaults(fault)
			e.warm()

			pub := &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: nodeA, VolumeCapability: rwo}
			_, err := e.cs.ControllerPublishVolume(e.shortCtx(time.Second), pub)
			ctCode(t, err, codes.Aborted)
			// A retry waits on the same attachment: no second attach.
			_, err = e.cs.ControllerPublishVolume(e.shortCtx(500*time.Millisecond), pub)
			ctCode(t, err, codes.Aborted)
			if got := e.calls()["POST /compute/v2.1/servers/{server_id}/os-volume_attachments"]; got != 1 {
				t.Fatalf("attach requests = %d, want 1", got)
			}
			if atts := e.emu.Attachments(); len(atts) != 1 || atts[0].Status != name {
				t.Fatalf("attachments = %+v, want one %s", atts, name)
			}

			// The fault stays on during unpublish: clearing it would let the
			// emulator resume the stuck attachment, and the test would prove
			// nothing.
			if _, err := e.cs.ControllerUnpublishVolume(e.ctx(), &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: nodeA}); err != nil {
				t.Fatalf("unpublish: %v", err)
			}
			if atts := e.emu.Attachments(); len(atts) != 0 {
				t.Fatalf("attachments after unpublish = %+v, want none", atts)
			}
			e.emu.SetFaults(emulator.Faults{})
			e.mustPublish(volID, nodeA)
			if v, _ := e.volume(volID); v.Status != "in-use" || len(v.Attachments) != 1 {
				t.Fatalf("volume after recovery = %+v", v)
			}
		})
	}
}

// TestControllerDetachingVolume: Cinder lists a detaching volume's
// attachment until the detach is done, so while it runs DeleteVolume and a
// publish to another node answer Aborted (retry), not FailedPrecondition.
func TestControllerDetachingVolume(t *testing.T) {
	e := newControllerEnv(t)
	id := e.mustCreate("pvc-detaching", 1)
	e.mustPublish(id, nodeA)
	e.emu.SetLatency("detach", 3*time.Second)
	// The deadline ends the unpublish's wait with the detach started.
	_, err := e.cs.ControllerUnpublishVolume(e.shortCtx(200*time.Millisecond), &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: nodeA})
	ctCode(t, err, codes.Aborted)
	if v, _ := e.volume(id); v.Status != "detaching" {
		t.Fatalf("volume status %s, want detaching", v.Status)
	}
	_, err = e.cs.DeleteVolume(e.ctx(), &csi.DeleteVolumeRequest{VolumeId: id})
	ctCode(t, err, codes.Aborted)
	_, err = e.cs.ControllerPublishVolume(e.ctx(), &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: nodeB, VolumeCapability: ctMount(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)})
	ctCode(t, err, codes.Aborted)
}
