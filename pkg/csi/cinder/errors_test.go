package cinder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func TestCodeForError(t *testing.T) {
	kind := func(k openstack.Kind) error {
		return fmt.Errorf("wrapped: %w", &openstack.Error{Kind: k, Op: "volume_create"})
	}
	_, paramErr := params.ParseVolume(map[string]string{"bogus": "1"})
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"not found", kind(openstack.KindNotFound), codes.NotFound},
		{"conflict is Cinder still working", kind(openstack.KindConflict), codes.Aborted},
		{"conflict needing the user", needsUser(kind(openstack.KindConflict)), codes.FailedPrecondition},
		{"needsUser leaves other kinds alone", needsUser(kind(openstack.KindUnavailable)), codes.Unavailable},
		{"over quota", kind(openstack.KindOverQuota), codes.ResourceExhausted},
		{"device limit", kind(openstack.KindDeviceLimit), codes.ResourceExhausted},
		{"rate limited", kind(openstack.KindRateLimited), codes.Unavailable},
		{"unavailable", kind(openstack.KindUnavailable), codes.Unavailable},
		{"bad request", kind(openstack.KindBadRequest), codes.InvalidArgument},
		{"forbidden", kind(openstack.KindForbidden), codes.PermissionDenied},
		{"wait timeout", kind(openstack.KindTimeout), codes.Aborted},
		{"config", kind(openstack.KindConfig), codes.FailedPrecondition},
		{"error state, no room", &openstack.Error{Kind: openstack.KindErrorState, Message: "No valid host was found"}, codes.ResourceExhausted},
		{"error state, no backend", &openstack.Error{Kind: openstack.KindErrorState, Message: "schedule allocate volume:Could not find any available weighted backend."}, codes.ResourceExhausted},
		{"error state, other", &openstack.Error{Kind: openstack.KindErrorState, Message: "driver failed"}, codes.Unavailable},
		{"parameter error", paramErr, codes.InvalidArgument},
		{"status passes through", status.Error(codes.OutOfRange, "x"), codes.OutOfRange},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", context.Canceled, codes.Canceled},
		{"not understood", errors.New("boom"), codes.Internal},
		{"unknown kind", &openstack.Error{Kind: openstack.KindUnknown}, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeForError(tt.err); got != tt.want {
				t.Fatalf("CodeForError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestStatusFromErrorNamesTheOperation(t *testing.T) {
	err := StatusFromError(&openstack.Error{Kind: openstack.KindOverQuota, Op: "volume_create", Message: "VolumeSizeExceedsAvailableQuota"}, "creating volume %q", "pvc-1")
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted || !strings.HasPrefix(st.Message(), `creating volume "pvc-1": `) || !strings.Contains(st.Message(), "VolumeSizeExceedsAvailableQuota") {
		t.Fatalf("status = %v", st)
	}
	if StatusFromError(nil, "x") != nil {
		t.Fatal("nil error became a status")
	}
	wrapped := StatusFromError(status.Error(codes.NotFound, "volume x"), "publishing")
	if status.Code(wrapped) != codes.NotFound || !strings.Contains(wrapped.Error(), "publishing: volume x") {
		t.Fatalf("wrapped status = %v", wrapped)
	}
}

func TestSizeFromRange(t *testing.T) {
	tests := []struct {
		name    string
		r       *csi.CapacityRange
		wantGiB int
		code    codes.Code
	}{
		{"unset uses the default", nil, 1, codes.OK},
		{"exact GiB", &csi.CapacityRange{RequiredBytes: 3 * gib}, 3, codes.OK},
		{"rounds up", &csi.CapacityRange{RequiredBytes: 3*gib + 1}, 4, codes.OK},
		{"limit only", &csi.CapacityRange{LimitBytes: 5 * gib}, 1, codes.OK},
		{"limit below default", &csi.CapacityRange{LimitBytes: gib / 2}, 0, codes.OutOfRange},
		{"rounding exceeds limit", &csi.CapacityRange{RequiredBytes: gib + 1, LimitBytes: gib + 5}, 0, codes.OutOfRange},
		{"required above limit", &csi.CapacityRange{RequiredBytes: 3 * gib, LimitBytes: 2 * gib}, 0, codes.InvalidArgument},
		{"negative", &csi.CapacityRange{RequiredBytes: -1}, 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _, err := sizeFromRange(tt.r, 1)
			if status.Code(err) != tt.code || got != tt.wantGiB {
				t.Fatalf("sizeFromRange = %d, %v; want %d, %v", got, err, tt.wantGiB, tt.code)
			}
		})
	}
}

func TestVolumeTokenRoundTrip(t *testing.T) {
	for _, cloud := range []string{"", "second", "a:b/c"} {
		for _, marker := range []string{"", "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01"} {
			c, m, ok := decodeVolumeToken(encodeVolumeToken(cloud, marker))
			if !ok || c != cloud || m != marker {
				t.Fatalf("round trip of (%q, %q) = (%q, %q, %v)", cloud, marker, c, m, ok)
			}
		}
	}
	for _, bad := range []string{"x", "v1:", "v1:!!:m"} {
		if _, _, ok := decodeVolumeToken(bad); ok {
			t.Fatalf("token %q accepted", bad)
		}
	}
}

func TestCheckCaps(t *testing.T) {
	tests := []struct {
		name    string
		caps    []*csi.VolumeCapability
		multi   bool
		problem string
	}{
		{name: "none", problem: "required"},
		{name: "RWO", caps: []*csi.VolumeCapability{rwo}},
		{name: "ROX mount", caps: []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}, problem: "needs block access"},
		{name: "ROX block", caps: []*csi.VolumeCapability{ctBlock(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}, multi: true},
		{name: "unknown mode", caps: []*csi.VolumeCapability{ctMount(csi.VolumeCapability_AccessMode_UNKNOWN)}, problem: "unsupported access mode"},
		{name: "block only", caps: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: rwo.AccessMode,
		}}},
		{name: "nil entry", caps: []*csi.VolumeCapability{nil}, problem: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			multi, problem := checkCaps(tt.caps)
			if multi != tt.multi || (tt.problem == "") != (problem == "") || !strings.Contains(problem, tt.problem) {
				t.Fatalf("checkCaps = %v, %q; want %v, %q", multi, problem, tt.multi, tt.problem)
			}
		})
	}
}

func TestIdentityServer(t *testing.T) {
	ctx := context.Background()
	ids := NewIdentityServer(IdentityOptions{DriverName: "other.csi", Version: "1.2.3", WithTopology: true, ProvidesController: true})
	info, _ := ids.GetPluginInfo(ctx, nil)
	if info.Name != "other.csi" || info.VendorVersion != "1.2.3" {
		t.Fatalf("plugin info = %v", info)
	}
	probe, _ := ids.Probe(ctx, nil)
	if !probe.Ready.GetValue() {
		t.Fatal("probe not ready")
	}
	count := func(ids *IdentityServer) (services []csi.PluginCapability_Service_Type, expansion int) {
		resp, _ := ids.GetPluginCapabilities(ctx, nil)
		for _, c := range resp.Capabilities {
			if s := c.GetService(); s != nil {
				services = append(services, s.Type)
			}
			if c.GetVolumeExpansion() != nil {
				expansion++
			}
		}
		return
	}
	if s, x := count(ids); len(s) != 2 || x != 2 {
		t.Fatalf("controller+topology capabilities = %v, %d expansion", s, x)
	}
	nodeOnly := NewIdentityServer(IdentityOptions{})
	if s, _ := count(nodeOnly); len(s) != 0 {
		t.Fatalf("node-only pod advertises %v", s)
	}
	if info, _ := nodeOnly.GetPluginInfo(ctx, nil); info.Name != DefaultDriverName || info.VendorVersion == "" {
		t.Fatalf("defaults = %v", info)
	}
}

// pkg/kata returns typed errors; this file's mapping is the only place
// that turns them into codes, and the message says what was being done.
func TestKataErrorsMapByKind(t *testing.T) {
	for _, tc := range []struct {
		kind kataerr.Kind
		code codes.Code
	}{
		{kataerr.Internal, codes.Internal},
		{kataerr.Invalid, codes.InvalidArgument},
		{kataerr.Precondition, codes.FailedPrecondition},
		{kataerr.Unavailable, codes.Unavailable},
		{kataerr.NotFound, codes.NotFound},
		{kataerr.AlreadyExists, codes.AlreadyExists},
	} {
		err := kataerr.Errorf(tc.kind, "unmounting staging %s: %w", "/s", fs.ErrPermission)
		if got := CodeForError(err); got != tc.code {
			t.Errorf("%v: CodeForError = %v, want %v", tc.kind, got, tc.code)
		}
		for _, st := range []error{kataStatus(err, "publishing volume %s", "v1"), kataLookupStatus(err, "publishing volume %s", "v1")} {
			if status.Code(st) != tc.code || status.Convert(st).Message() != "publishing volume v1: unmounting staging /s: permission denied" {
				t.Errorf("%v: status = %v", tc.kind, st)
			}
		}
	}
	// Another KataPublisher's untyped error: Internal, or Unavailable for
	// the Wants lookup; a status passes through.
	plain := errors.New("boom")
	if c := status.Code(kataStatus(plain, "x")); c != codes.Internal {
		t.Errorf("untyped kataStatus = %v, want Internal", c)
	}
	if c := status.Code(kataLookupStatus(plain, "x")); c != codes.Unavailable {
		t.Errorf("untyped kataLookupStatus = %v, want Unavailable", c)
	}
	if c := status.Code(kataStatus(status.Error(codes.Aborted, "busy"), "x")); c != codes.Aborted {
		t.Errorf("status through kataStatus = %v, want Aborted", c)
	}
}
