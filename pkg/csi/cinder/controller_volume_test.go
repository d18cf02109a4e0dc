package cinder

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestControllerCreateVolume(t *testing.T) {
	rwxBlockMulti := ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
	tests := []struct {
		name    string
		setup   func(e *controllerEnv) // before counters are reset
		req     func(e *controllerEnv) *csi.CreateVolumeRequest
		code    codes.Code
		check   func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse)
		volumes int   // volumes in the emulator afterwards
		calls   int64 // API calls (Keystone excluded); -1 = not checked
	}{
		{
			name: "default size is 1 GiB, metadata and topology set",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-default", 0)
				r.CapacityRange = nil
				r.Parameters = map[string]string{"csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "ns", "csi.storage.k8s.io/pv/name": "pvc-default"}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				v, _ := e.volume(resp.Volume.VolumeId)
				if v.SizeGiB != 1 || v.Status != "available" {
					t.Errorf("volume = %+v, want 1 GiB available", v)
				}
				want := map[string]string{openstack.MetaCluster: "test-cluster", metaPVCName: "data", metaPVCNamespace: "ns", metaPVName: "pvc-default"}
				for k, val := range want {
					if v.Metadata[k] != val {
						t.Errorf("metadata %s = %q, want %q", k, v.Metadata[k], val)
					}
				}
				if got := resp.Volume.AccessibleTopology[0].Segments[TopologyKey]; got != testAZ {
					t.Errorf("topology zone = %q, want %q", got, testAZ)
				}
			},
			volumes: 1, calls: 3,
		},
		{
			name: "bytes round up to whole GiB",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-round", 0)
				r.CapacityRange = &csi.CapacityRange{RequiredBytes: gib + 1}
				return r
			},
			check: func(t *testing.T, _ *controllerEnv, resp *csi.CreateVolumeResponse) {
				if resp.Volume.CapacityBytes != 2*gib {
					t.Errorf("capacity = %d, want 2 GiB", resp.Volume.CapacityBytes)
				}
			},
			volumes: 1, calls: 3,
		},
		{
			name: "limit below the rounded size is OutOfRange",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-limit", 0)
				r.CapacityRange = &csi.CapacityRange{RequiredBytes: gib + 1, LimitBytes: gib + 2}
				return r
			},
			code: codes.OutOfRange, volumes: 0, calls: 0,
		},
		{
			name:    "missing name is InvalidArgument",
			req:     func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("", 1) },
			code:    codes.InvalidArgument,
			volumes: 0, calls: 0,
		},
		{
			name: "unknown StorageClass parameter is InvalidArgument",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-typo", 1)
				r.Parameters = map[string]string{"availabilty": "nova"}
				return r
			},
			code: codes.InvalidArgument, volumes: 0, calls: 0,
		},
		{
			// Real Cinder answers 404 for an unknown type (openstack-rig);
			// CSI keeps NotFound for a missing source. Lookup, POST, and
			// the type lookup that tells the type from a vanished source.
			name: "unknown volume type is InvalidArgument",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-no-type", 1)
				r.Parameters = map[string]string{"type": "no-such-type"}
				return r
			},
			code: codes.InvalidArgument, volumes: 0, calls: 3,
		},
		{
			name: "RWX on a filesystem is InvalidArgument",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-rwx", 1)
				r.VolumeCapabilities = []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
				return r
			},
			code: codes.InvalidArgument, volumes: 0, calls: 0,
		},
		{
			name: "RWX block on a plain type is InvalidArgument",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-rwx-block", 1)
				r.VolumeCapabilities = []*csi.VolumeCapability{rwxBlockMulti}
				r.Parameters = map[string]string{"type": ssdType}
				return r
			},
			code: codes.InvalidArgument, volumes: 0, calls: 1,
		},
		{
			name: "RWX block on a multiattach type is created",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-rwx-multi", 1)
				r.VolumeCapabilities = []*csi.VolumeCapability{rwxBlockMulti}
				r.Parameters = map[string]string{"type": multiType}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if v, _ := e.volume(resp.Volume.VolumeId); !v.Multiattach || v.VolumeType != multiType {
					t.Errorf("volume = %+v, want multiattach type %s", v, multiType)
				}
			},
			volumes: 1, calls: 4,
		},
		{
			name: "RWOP (single node single writer) is accepted",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-rwop", 1)
				r.VolumeCapabilities = []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)}
				return r
			},
			volumes: 1, calls: 3,
		},
		{
			name: "preferred topology picks the AZ",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-topo", 1)
				r.AccessibilityRequirements = &csi.TopologyRequirement{
					Requisite: []*csi.Topology{{Segments: map[string]string{TopologyKey: testAZ}}, {Segments: map[string]string{TopologyKey: otherAZ}}},
					Preferred: []*csi.Topology{{Segments: map[string]string{TopologyKey: otherAZ}}},
				}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if v, _ := e.volume(resp.Volume.VolumeId); v.AZ != otherAZ {
					t.Errorf("AZ = %q, want %q", v.AZ, otherAZ)
				}
				if got := resp.Volume.AccessibleTopology[0].Segments[TopologyKey]; got != otherAZ {
					t.Errorf("topology = %q, want %q", got, otherAZ)
				}
			},
			volumes: 1, calls: 3,
		},
		{
			name: "availability parameter wins over topology",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-avail", 1)
				r.Parameters = map[string]string{"availability": otherAZ}
				r.AccessibilityRequirements = &csi.TopologyRequirement{Preferred: []*csi.Topology{{Segments: map[string]string{TopologyKey: testAZ}}}}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if v, _ := e.volume(resp.Volume.VolumeId); v.AZ != otherAZ {
					t.Errorf("AZ = %q, want %q", v.AZ, otherAZ)
				}
			},
			volumes: 1, calls: 3,
		},
		{
			name:    "repeat of a created volume is answered from one lookup",
			setup:   func(e *controllerEnv) { e.mustCreate("pvc-again", 1) },
			req:     func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("pvc-again", 1) },
			volumes: 1, calls: 1,
		},
		{
			name:    "same name with another size is AlreadyExists",
			setup:   func(e *controllerEnv) { e.mustCreate("pvc-size", 1) },
			req:     func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("pvc-size", 5) },
			code:    codes.AlreadyExists,
			volumes: 1, calls: 1,
		},
		{
			name:  "same name with another type is AlreadyExists",
			setup: func(e *controllerEnv) { e.mustCreate("pvc-type", 1) },
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-type", 1)
				r.Parameters = map[string]string{"type": ssdType}
				return r
			},
			code: codes.AlreadyExists, volumes: 1, calls: 1,
		},
		{
			name: "an existing volume in error is reported, not deleted",
			setup: func(e *controllerEnv) {
				id := e.mustCreate("pvc-broken", 1)
				e.emu.SetVolumeStatus(id, "error")
			},
			req:  func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("pvc-broken", 1) },
			code: codes.FailedPrecondition, volumes: 1, calls: -1,
		},
		{
			name: "a still-creating volume past the deadline is Aborted and kept",
			setup: func(e *controllerEnv) {
				id := e.mustCreate("pvc-slow", 1)
				e.emu.SetVolumeStatus(id, "creating")
			},
			req:  func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("pvc-slow", 1) },
			code: codes.Aborted, volumes: 1, calls: -1,
		},
		{
			name:  "a volume Cinder puts in error is deleted and explained",
			setup: func(e *controllerEnv) { e.emu.SetFaults(emulator.Faults{VolumeErrorRate: 1}) },
			req:   func(*controllerEnv) *csi.CreateVolumeRequest { return createReq("pvc-fails", 1) },
			check: nil,
			// ResourceExhausted when Cinder says no host had room, else
			// Unavailable; the emulator's message decides, so accept both
			// below.
			code: codes.Unknown, volumes: 0, calls: -1,
		},
		{
			name: "restore of a larger size from a snapshot asks the node to grow the filesystem",
			setup: func(e *controllerEnv) {
				id := e.mustCreate("pvc-src", 1)
				e.mustSnapshot("snap-src", id, nil)
			},
			req: func(e *controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-restored", 2)
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: e.emu.Snapshots()[0].ID}}}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if resp.Volume.VolumeContext[VolumeContextResizeRequired] != "true" {
					t.Errorf("volume context = %v, want %s=true", resp.Volume.VolumeContext, VolumeContextResizeRequired)
				}
				if v, _ := e.volume(resp.Volume.VolumeId); v.SnapshotID != e.emu.Snapshots()[0].ID || v.SizeGiB != 2 {
					t.Errorf("volume = %+v, want 2 GiB from the snapshot", v)
				}
				if resp.Volume.ContentSource.GetSnapshot() == nil {
					t.Error("content source not echoed")
				}
			},
			volumes: 2, calls: 4,
		},
		{
			name: "restore from a snapshot that does not exist is NotFound",
			req: func(*controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-nosnap", 1)
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: nodeGone}}}
				return r
			},
			code: codes.NotFound, volumes: 0, calls: 3,
		},
		{
			name:  "clone of a volume",
			setup: func(e *controllerEnv) { e.mustCreate("pvc-orig", 1) },
			req: func(e *controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-clone", 1)
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: e.volumesNamed("pvc-orig")[0].ID}}}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if v, _ := e.volume(resp.Volume.VolumeId); v.SourceVolID != e.volumesNamed("pvc-orig")[0].ID {
					t.Errorf("clone source = %q", v.SourceVolID)
				}
			},
			// lookup, source GET, create, poll: the source GET and the poll
			// share one key, so they count once.
			volumes: 2, calls: 3,
		},
		{
			name: "restore from a backup",
			setup: func(e *controllerEnv) {
				id := e.mustCreate("pvc-backed", 1)
				e.mustSnapshot("backup-src", id, map[string]string{"type": "backup"})
			},
			req: func(e *controllerEnv) *csi.CreateVolumeRequest {
				r := createReq("pvc-from-backup", 1)
				r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: e.emu.Backups()[0].ID}}}
				return r
			},
			check: func(t *testing.T, e *controllerEnv, resp *csi.CreateVolumeResponse) {
				if v, _ := e.volume(resp.Volume.VolumeId); v.BackupID != e.emu.Backups()[0].ID {
					t.Errorf("volume backup = %q, want %q", v.BackupID, e.emu.Backups()[0].ID)
				}
			},
			volumes: 2, calls: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t)
			ctx := e.ctx()
			if strings.Contains(tt.name, "past the deadline") {
				ctx = e.shortCtx(500 * 1e6)
			}
			if tt.setup != nil {
				tt.setup(e)
			}
			e.warm()
			resp, err := e.cs.CreateVolume(ctx, tt.req(e))
			switch tt.code {
			case codes.Unknown: // error from Cinder's own failure
				if c := CodeForError(err); c != codes.ResourceExhausted && c != codes.Unavailable {
					t.Fatalf("code = %v, want ResourceExhausted or Unavailable (err: %v)", c, err)
				}
			default:
				ctCode(t, err, tt.code)
			}
			if err == nil && tt.check != nil {
				tt.check(t, e, resp)
			}
			calls := e.calls()
			if tt.calls >= 0 && distinct(calls) != tt.calls {
				t.Errorf("API calls (polls once) = %d, want %d: %s", distinct(calls), tt.calls, formatCalls(calls))
			}
			// A failed volume's DELETE is accepted and carried out
			// asynchronously: wait for those deletes instead of
			// counting at once.
			for _, v := range e.emu.Volumes() {
				if v.Status == openstack.VolumeDeleting {
					e.waitVolumeGone(v.ID)
				}
			}
			if got := len(e.emu.Volumes()); got != tt.volumes {
				t.Errorf("volumes in the emulator = %d, want %d", got, tt.volumes)
			}
		})
	}
}

func TestControllerDeleteVolume(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *controllerEnv) string
		code    codes.Code
		msg     string // in the error message, when set
		volumes int
		calls   int64
	}{
		{name: "not found is success", setup: func(*controllerEnv) string { return nodeGone }, volumes: 0, calls: 1},
		{name: "deleted and waited for", setup: func(e *controllerEnv) string { return e.mustCreate("pvc-del", 1) }, volumes: 0, calls: -1},
		{
			name: "attached is FailedPrecondition",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-attached", 1)
				e.mustPublish(id, nodeA)
				return id
			},
			// The refused DELETE (nothing changes), then the GET that says why.
			code: codes.FailedPrecondition, volumes: 1, calls: 2,
		},
		{
			name: "dependent snapshot is FailedPrecondition",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-with-snap", 1)
				e.mustSnapshot("snap-dep", id, nil)
				return id
			},
			// The refused DELETE, the GET, and the snapshot listing that tells a
			// live dependent snapshot from one already being deleted.
			code: codes.FailedPrecondition, msg: "has snapshot(s)", volumes: 1, calls: 3,
		},
		{
			name: "snapshots already being deleted is Aborted",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-snap-going", 1)
				snap := e.mustSnapshot("snap-going", id, nil)
				e.emu.SetLatency("snapshot_delete", time.Minute)
				_, err := e.cs.DeleteSnapshot(e.shortCtx(50*time.Millisecond), &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId})
				ctCode(t, err, codes.Aborted)
				return id
			},
			code: codes.Aborted, msg: "being deleted", volumes: 1, calls: 3,
		},
		{
			// Cinder refuses a status our read does not treat as changing:
			// its own message goes to the user, not a guess about snapshots.
			name: "refused without snapshots is FailedPrecondition with Cinder's reason",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-maintenance", 1)
				e.emu.SetVolumeStatus(id, "maintenance")
				return id
			},
			// The refused DELETE, the GET, the empty snapshot listing.
			code: codes.FailedPrecondition, msg: "Volume status must be available", volumes: 1, calls: 3,
		},
		{
			name: "still creating is Aborted",
			setup: func(e *controllerEnv) string {
				id := e.mustCreate("pvc-creating", 1)
				e.emu.SetVolumeStatus(id, "creating")
				return id
			},
			code: codes.Aborted, volumes: 1, calls: 2,
		},
		{name: "empty id is InvalidArgument", setup: func(*controllerEnv) string { return "" }, code: codes.InvalidArgument, volumes: 0, calls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newControllerEnv(t)
			id := tt.setup(e)
			e.warm()
			_, err := e.cs.DeleteVolume(e.ctx(), &csi.DeleteVolumeRequest{VolumeId: id})
			ctCode(t, err, tt.code)
			if tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("error %v does not say %q", err, tt.msg)
			}
			if calls := e.calls(); tt.calls >= 0 && distinct(calls) != tt.calls {
				t.Errorf("API calls (polls once) = %d, want %d: %s", distinct(calls), tt.calls, formatCalls(calls))
			}
			if got := len(e.emu.Volumes()); got != tt.volumes {
				t.Errorf("volumes = %d, want %d", got, tt.volumes)
			}
		})
	}
}

func TestControllerUnknownCloudSecretIsInvalidArgument(t *testing.T) {
	e := newControllerEnv(t)
	e.warm()
	req := createReq("pvc-x", 1)
	req.Secrets = map[string]string{SecretCloudKey: "nowhere"}
	_, err := e.cs.CreateVolume(e.ctx(), req)
	ctCode(t, err, codes.InvalidArgument)
	if n := total(e.calls()); n != 0 {
		t.Errorf("API calls = %d, want 0", n)
	}
}

func TestControllerConcurrentCreateOfOneNameIsAborted(t *testing.T) {
	e := newControllerEnv(t)
	release, ok := e.cs.inFlight.TryAcquire("volume-name/pvc-busy")
	if !ok {
		t.Fatal("could not hold the name")
	}
	defer release()
	_, err := e.cs.CreateVolume(context.Background(), createReq("pvc-busy", 1))
	ctCode(t, err, codes.Aborted)
}

// fakePVCs is a PVCLookup over a fixed map (a unit-test fake of the
// Kubernetes API, not of the cloud).
type fakePVCs map[string]map[string]string

func (f fakePVCs) Annotations(_ context.Context, ns, name string) (map[string]string, error) {
	return f[ns+"/"+name], nil
}

func TestControllerPVCAnnotationsBecomeSchedulerHints(t *testing.T) {
	pvcs := fakePVCs{}
	e := newControllerEnv(t, withController(func(o *ControllerOptions) {
		o.PVCAnnotations = true
		o.PVCLookup = pvcs
	}))
	near := e.mustCreate("pvc-near", 1)
	pvcs["ns/data"] = map[string]string{AnnotationAffinity: "pvc-near"}
	req := createReq("pvc-hinted", 1)
	req.Parameters = map[string]string{params.KeyPVCName: "data", params.KeyPVCNamespace: "ns", params.KeyKataDirectVolume: "false"}
	resp, err := e.cs.CreateVolume(e.ctx(), req)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	vctx := resp.Volume.VolumeContext
	if vctx[volumeContextAffinity] != "pvc-near" || vctx[params.KeyKataDirectVolume] != "false" {
		t.Fatalf("volume context = %v", vctx)
	}

	// The emulator has one backend host, so "away from" an existing volume
	// cannot be placed: Cinder's no-backend error is ResourceExhausted and
	// the failed volume is deleted. Cinder (and the emulator) delete
	// asynchronously, so the volume may still be listed as deleting when
	// the call returns: wait (shared poller, test deadline) until it is
	// gone rather than look once.
	pvcs["ns/apart"] = map[string]string{AnnotationAntiAffinity: near}
	req = createReq("pvc-apart", 1)
	req.Parameters = map[string]string{params.KeyPVCName: "apart", params.KeyPVCNamespace: "ns"}
	_, err = e.cs.CreateVolume(e.ctx(), req)
	ctCode(t, err, codes.ResourceExhausted)
	for _, v := range e.volumesNamed("pvc-apart") {
		if v.Status != openstack.VolumeDeleting {
			t.Fatalf("failed volume %s left in status %s, not deleted", v.ID, v.Status)
		}
		e.waitVolumeGone(v.ID)
	}

	pvcs["ns/bad"] = map[string]string{AnnotationAffinity: "no-such-volume"}
	req = createReq("pvc-badhint", 1)
	req.Parameters = map[string]string{params.KeyPVCName: "bad", params.KeyPVCNamespace: "ns"}
	_, err = e.cs.CreateVolume(e.ctx(), req)
	ctCode(t, err, codes.InvalidArgument)
	if n := len(e.volumesNamed("pvc-badhint")); n != 0 {
		t.Fatalf("%d volumes created for a bad hint", n)
	}
}

func TestNewControllerServerRefusesBadOptions(t *testing.T) {
	e := newControllerEnv(t)
	if _, err := NewControllerServer(nil, DefaultControllerOptions()); err == nil {
		t.Error("nil clouds accepted")
	}
	opts := DefaultControllerOptions()
	opts.PVCAnnotations = true
	if _, err := NewControllerServer(e.cs.clouds, opts); err == nil {
		t.Error("PVC annotations without a lookup accepted")
	}
}
