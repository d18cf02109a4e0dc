package cinder

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoundUpGiBAndGiBBytesDoNotOverflow(t *testing.T) {
	for _, tc := range []struct{ bytes, giB int64 }{
		{0, 0}, {1, 1}, {gib, 1}, {gib + 1, 2}, {math.MaxInt64, math.MaxInt64/gib + 1},
	} {
		if got := roundUpGiB(tc.bytes); got != tc.giB {
			t.Errorf("roundUpGiB(%d) = %d, want %d", tc.bytes, got, tc.giB)
		}
	}
	for _, tc := range []struct{ giB, bytes int64 }{
		{-1, 0}, {0, 0}, {1, gib}, {maxVolumeGiB, maxVolumeGiB * gib}, {math.MaxInt64 / gib, (math.MaxInt64 / gib) * gib},
		{math.MaxInt64/gib + 1, math.MaxInt64}, {math.MaxInt64, math.MaxInt64},
	} {
		if got := gibBytes(tc.giB); got != tc.bytes {
			t.Errorf("gibBytes(%d) = %d, want %d", tc.giB, got, tc.bytes)
		}
	}
	if got := freeGiB(math.MaxInt32, 0, 0); got != math.MaxInt32*gib {
		t.Errorf("freeGiB(MaxInt32) = %d", got)
	}
	if got := freeGiB(math.MaxInt, 0, 0); got != math.MaxInt64 {
		t.Errorf("freeGiB(MaxInt) = %d, want MaxInt64 (saturated), not a wrapped value", got)
	}
}

// The ordinary cases are in errors_test.go's TestSizeFromRange; these are
// the extremes, where the arithmetic used to overflow.
func TestSizeFromRangeExtremes(t *testing.T) {
	tests := []struct {
		name            string
		required, limit int64
		wantGiB         int
		code            codes.Code
		inMsg           string
	}{
		{name: "the largest Cinder size", required: maxVolumeGiB * gib, wantGiB: int(maxVolumeGiB)},
		{name: "one byte above the largest Cinder size", required: maxVolumeGiB*gib + 1, code: codes.OutOfRange, inMsg: strconv.FormatInt(maxVolumeGiB*gib+1, 10)},
		{name: "MaxInt64 required", required: math.MaxInt64, code: codes.OutOfRange, inMsg: "required_bytes 9223372036854775807 rounds up to 8589934592 GiB"},
		{name: "MaxInt64 required and limit", required: math.MaxInt64, limit: math.MaxInt64, code: codes.OutOfRange, inMsg: "9223372036854775807"},
		{name: "MaxInt64 limit alone is fine", limit: math.MaxInt64, wantGiB: 1},
		{name: "MaxInt64-1 required under MaxInt64 limit", required: math.MaxInt64 - 1, limit: math.MaxInt64, code: codes.OutOfRange, inMsg: "largest volume Cinder accepts"},
		{name: "whole GiB above limit", required: gib + 1, limit: gib + 2, code: codes.OutOfRange, inMsg: "limit_bytes 1073741826"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _, err := sizeFromRange(&csi.CapacityRange{RequiredBytes: tt.required, LimitBytes: tt.limit}, 1)
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v, want %v (err: %v)", status.Code(err), tt.code, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not say %q", err, tt.inMsg)
			}
			if err == nil && got != tt.wantGiB {
				t.Errorf("size = %d GiB, want %d", got, tt.wantGiB)
			}
		})
	}
}

// Capacities near MaxInt64 are OutOfRange before anything is sent: Cinder
// never sees an overflowed (negative) size, and nothing is created or
// extended.
func TestHugeCapacityIsOutOfRangeWithNothingChanged(t *testing.T) {
	e := newControllerEnv(t)
	volID := e.mustCreate("pvc-huge-existing", 1)
	for _, required := range []int64{math.MaxInt64, math.MaxInt64 - gib + 2, (maxVolumeGiB + 1) * gib} {
		e.warm()
		req := createReq("pvc-huge", 1)
		req.CapacityRange = &csi.CapacityRange{RequiredBytes: required}
		_, err := e.cs.CreateVolume(e.ctx(), req)
		ctCode(t, err, codes.OutOfRange)
		if !strings.Contains(err.Error(), strconv.FormatInt(required, 10)) {
			t.Errorf("CreateVolume error %q does not name required_bytes %d", err, required)
		}
		_, err = e.cs.ControllerExpandVolume(e.ctx(), &csi.ControllerExpandVolumeRequest{VolumeId: volID, CapacityRange: &csi.CapacityRange{RequiredBytes: required}})
		ctCode(t, err, codes.OutOfRange)
		if calls := e.calls(); len(calls) != 0 {
			t.Errorf("required_bytes %d reached the cloud: %s", required, formatCalls(calls))
		}
	}
	if n := len(e.volumesNamed("pvc-huge")); n != 0 {
		t.Errorf("%d volumes created", n)
	}
	if v, _ := e.volume(volID); v.SizeGiB != 1 {
		t.Errorf("volume size = %d GiB, want 1 (unchanged)", v.SizeGiB)
	}
}
