package observability

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/metadata"

	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// attachPath is the emulator's route for Nova's volume attach.
const attachPath = "POST /compute/v2.1/servers/{server_id}/os-volume_attachments"

var openstackRequestID = regexp.MustCompile(`\[request (req-[0-9a-f-]{36})\]`)

// TestRequestIDOfFailedOperation makes Nova fail every attach (500 or 503,
// retried, then given up) and checks that the X-Openstack-Request-Id the
// emulator answered with reaches the CSI error and the log line of the
// failed call at the default verbosity; and at -v=2 that every failed
// attempt is logged with its own id and the CSI call's request id.
func TestRequestIDOfFailedOperation(t *testing.T) {
	for _, tc := range []struct {
		format string
		v      int
	}{{logging.FormatText, 0}, {logging.FormatJSON, 2}} {
		t.Run(tc.format, func(t *testing.T) {
			logs := captureLogs(t, tc.format, tc.v)
			s := startStack(t, stackOptions{emu: emulator.Options{Seed: 3}})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			vc := mountCap("ext4")
			cv, err := s.ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-request-id", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
				VolumeCapabilities: []*csi.VolumeCapability{vc}})
			if err != nil {
				t.Fatalf("CreateVolume: %v", err)
			}
			vol := cv.GetVolume().GetVolumeId()

			s.emu.SetFaults(emulator.Faults{ErrorRate: 1, OnlyPaths: []string{attachPath}})
			const csiRequestID = "obs-attach-0001"
			callCtx := metadata.AppendToOutgoingContext(ctx, "x-request-id", csiRequestID)
			_, err = s.ctrl.ControllerPublishVolume(callCtx, &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: nodeID, VolumeCapability: vc})
			s.emu.SetFaults(emulator.Faults{})
			if err == nil {
				t.Fatal("ControllerPublishVolume succeeded with every attach failing")
			}
			m := openstackRequestID.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("the CSI error carries no OpenStack request id: %v", err)
			}
			osID := m[1]
			t.Logf("CSI error: %v", err)

			// The interceptor's one failure line names the call and the
			// OpenStack request id.
			var failureLine string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, osID) && strings.Contains(line, csiRequestID) && strings.Contains(line, "ControllerPublishVolume") {
					failureLine = line
					break
				}
			}
			if failureLine == "" {
				t.Fatalf("no log line holds OpenStack request %s with the call's method and request id %s", osID, csiRequestID)
			}
			if !strings.Contains(failureLine, vol) {
				t.Errorf("the failure line lacks the volume id: %s", failureLine)
			}
			if tc.v < 2 {
				return
			}
			// At -v=2 each failed attempt has its own line, with its own
			// OpenStack id and the CSI call's request id.
			attempts := map[string]bool{}
			for _, line := range strings.Split(logs.String(), "\n") {
				if line == "" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a JSON log line: %q: %v", line, err)
				}
				if rec["msg"] != "OpenStack API call failed" || rec["operation"] != "volume_attach" {
					continue
				}
				if rec["requestID"] != csiRequestID || rec["volumeID"] != vol {
					t.Errorf("failed attempt logged without the CSI call's ids: %s", line)
				}
				id, _ := rec["openstackRequestID"].(string)
				if !strings.HasPrefix(id, "req-") {
					t.Errorf("failed attempt logged without its OpenStack request id: %s", line)
				}
				attempts[id] = true
			}
			if len(attempts) < 2 || !attempts[osID] {
				t.Errorf("failed attach attempts logged: %v; want several, including %s", attempts, osID)
			}
		})
	}
}
