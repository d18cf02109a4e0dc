package cinder

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// badIDs are ids no Cinder or Nova resource has: each must be refused
// before it reaches a URL.
var badIDs = []string{
	"vol\nid", "vol\rid", "vol\x7fid", "vol\x00id", "vol\x1bid",
	"../snapshots/0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01", "a/b", `a\b`, "a?x=1", "a#b", "a%0a", ".", "..",
	strings.Repeat("a", maxIDLen+1), "\xff\xfe",
}

// idRPCs calls every controller RPC that carries an id with that id in
// the given role ("volume", "node", "snapshot", "source").
func idRPCs(volID string) map[string]func(ctx context.Context, cs *ControllerServer, bad string) error {
	return map[string]func(ctx context.Context, cs *ControllerServer, bad string) error{
		"DeleteVolume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: bad})
			return err
		},
		"ControllerPublishVolume volume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: bad, NodeId: nodeA, VolumeCapability: rwo})
			return err
		},
		"ControllerPublishVolume node": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: bad, VolumeCapability: rwo})
			return err
		},
		"ControllerUnpublishVolume volume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: bad, NodeId: nodeA})
			return err
		},
		"ControllerUnpublishVolume node": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: bad})
			return err
		},
		"ControllerGetVolume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: bad})
			return err
		},
		"ValidateVolumeCapabilities": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: bad, VolumeCapabilities: []*csi.VolumeCapability{rwo}})
			return err
		},
		"ControllerExpandVolume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: bad, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
			return err
		},
		"ControllerModifyVolume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{VolumeId: bad, MutableParameters: map[string]string{"type": ssdType}})
			return err
		},
		"ControllerGetVolumeHealth": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: bad})
			return err
		},
		"CreateSnapshot source": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-bad-source", SourceVolumeId: bad})
			return err
		},
		"DeleteSnapshot": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: bad})
			return err
		},
		"GetSnapshot": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.GetSnapshot(ctx, &csi.GetSnapshotRequest{SnapshotId: bad})
			return err
		},
		"ListSnapshots snapshot": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: bad})
			return err
		},
		"ListSnapshots source": func(ctx context.Context, cs *ControllerServer, bad string) error {
			_, err := cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: bad})
			return err
		},
		"CreateVolume from snapshot": func(ctx context.Context, cs *ControllerServer, bad string) error {
			req := createReq("pvc-bad-snapshot-source", 1)
			req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: bad}}}
			_, err := cs.CreateVolume(ctx, req)
			return err
		},
		"CreateVolume from volume": func(ctx context.Context, cs *ControllerServer, bad string) error {
			req := createReq("pvc-bad-volume-source", 1)
			req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: bad}}}
			_, err := cs.CreateVolume(ctx, req)
			return err
		},
	}
}

// An id with a control character, a path separator or another character
// that would change the request URL is InvalidArgument in every RPC, never
// Unavailable (which a sidecar retries forever); the message quotes it
// instead of carrying the raw character, and no call reaches the cloud.
func TestControllerRefusesMalformedIDs(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-ids", 1)
	for name, call := range idRPCs(volID) {
		t.Run(name, func(t *testing.T) {
			for _, bad := range badIDs {
				e.warm()
				err := call(e.ctx(), e.cs, bad)
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("id %q: code = %v, want InvalidArgument (err: %v)", bad, status.Code(err), err)
					continue
				}
				msg := status.Convert(err).Message()
				if strings.ContainsAny(msg, "\n\r\x7f\x00\x1b") || !strings.Contains(msg, " id") {
					t.Errorf("id %q: message %q carries a raw control character or does not name the id", bad, msg)
				}
				if calls := e.calls(); len(calls) != 0 {
					t.Errorf("id %q reached the cloud: %s", bad, formatCalls(calls))
				}
			}
		})
	}
}

// A well-formed id that names nothing still goes to Cinder and gets the
// answer the spec gives for a missing resource.
func TestControllerUnknownWellFormedIDs(t *testing.T) {
	e := newControllerEnv(t)
	const unknown = "non-existing-volume-id"
	ctx := e.ctx()
	if _, err := e.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: unknown}); err != nil {
		t.Errorf("DeleteVolume of an unknown id = %v, want success", err)
	}
	_, err := e.cs.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: unknown})
	ctCode(t, err, codes.NotFound)
	_, err = e.cs.ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{VolumeId: unknown})
	ctCode(t, err, codes.NotFound)
	volID := e.mustCreate("pvc-known", 1)
	_, err = e.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: "not-a-nova-server-id", VolumeCapability: rwo})
	ctCode(t, err, codes.NotFound)
}

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		id, inMsg string
	}{
		{"", "is required"},
		{"a\nb", `"a\nb" contains a control character (byte 0x0a at offset 1)`},
		{"\x7f", `"\x7f" contains a control character (byte 0x7f`},
		{"a/b", `contains '/'`},
		{"..", "is not an id"},
		{strings.Repeat("x", 256), "256 bytes long"},
		{"\xff", "not valid UTF-8"},
	} {
		err := checkID("volume", tc.id)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.inMsg) {
			t.Errorf("checkID(%q) = %v, want InvalidArgument saying %q", tc.id, err, tc.inMsg)
		}
	}
	for _, ok := range []string{"0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01", "non-existing-volume-id", "vol 1", "été"} {
		if err := checkID("volume", ok); err != nil {
			t.Errorf("checkID(%q) = %v, want nil", ok, err)
		}
	}
}
