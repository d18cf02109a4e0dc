package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// requireNodeHost skips unless the node service can format and mount the
// loop devices the emulator hot-plugs.
func requireNodeHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the node steps need root: they format and mount loop devices")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "blkid", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the node steps need %s on PATH", tool)
		}
	}
}

// TestLifecycleMetrics drives create, publish, stage, node publish, stats,
// node unpublish, unstage, unpublish and delete through the gRPC server,
// then scrapes /metrics and checks the series each step must leave.
func TestLifecycleMetrics(t *testing.T) {
	requireNodeHost(t)
	s := startStack(t, stackOptions{node: true})
	ctx := ctxFor(t, 3*time.Minute)

	if code, body := s.get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q, want 200 ok", code, body)
	}
	vc := mountCap("ext4")
	cv, err := s.ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: "pvc-observability-lifecycle", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{vc},
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	vol := cv.GetVolume().GetVolumeId()
	pub, err := s.ctrl.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: nodeID, VolumeCapability: vc})
	if err != nil {
		t.Fatalf("ControllerPublishVolume: %v", err)
	}
	staging := filepath.Join(s.work, "staging", vol)
	target := filepath.Join(s.work, "pods", vol, "mount")
	if _, err := s.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: staging,
		VolumeCapability: vc, PublishContext: pub.GetPublishContext()}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if _, err := s.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: vc, PublishContext: pub.GetPublishContext()}); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	if _, err := s.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: target}); err != nil {
		t.Fatalf("NodeGetVolumeStats: %v", err)
	}
	if _, err := s.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := s.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}
	if _, err := s.ctrl.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: nodeID}); err != nil {
		t.Fatalf("ControllerUnpublishVolume: %v", err)
	}
	if _, err := s.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol}); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}

	code, body := s.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	samples := parseExposition(t, body)
	if strings.Contains(body, vol) {
		t.Errorf("/metrics mentions the volume id %s; no label may take a value from a request", vol)
	}

	// CSI RPCs: one OK call of each lifecycle method.
	for _, method := range []string{"CreateVolume", "ControllerPublishVolume", "NodeStageVolume", "NodePublishVolume",
		"NodeGetVolumeStats", "NodeUnpublishVolume", "NodeUnstageVolume", "ControllerUnpublishVolume", "DeleteVolume"} {
		if n, _ := find(samples, "cinder_csi_rpc_requests_total", labels("method", method, "code", "OK")); n != 1 {
			t.Errorf("cinder_csi_rpc_requests_total{method=%q,code=\"OK\"} = %v, want 1", method, n)
		}
		if n, _ := find(samples, "cinder_csi_rpc_duration_seconds_count", labels("method", method, "code", "OK")); n != 1 {
			t.Errorf("cinder_csi_rpc_duration_seconds_count{method=%q,code=\"OK\"} = %v, want 1", method, n)
		}
	}
	if codes := labelValues(samples, "cinder_csi_rpc_requests_total", "code"); len(codes) != 1 || !codes["OK"] {
		t.Errorf("rpc codes = %v, want only OK", codes)
	}

	// OpenStack API: the reference plugin's names, with request equal to
	// operation and the numeric status.
	for _, want := range []map[string]string{
		labels("service", "identity", "operation", "token_issue", "request", "token_issue", "code", "201"),
		labels("service", "volumev3", "operation", "volume_create", "request", "volume_create", "code", "202"),
		labels("service", "volumev3", "operation", "volume_delete", "code", "202"),
		labels("service", "compute", "operation", "volume_attach"),
		labels("service", "compute", "operation", "volume_detach"),
	} {
		if n, _ := find(samples, "openstack_api_requests_total", want); n < 1 {
			t.Errorf("openstack_api_requests_total%v missing", want)
		}
		if n, _ := find(samples, "openstack_api_request_duration_seconds_count", want); n < 1 {
			t.Errorf("openstack_api_request_duration_seconds_count%v missing", want)
		}
	}
	for _, sm := range samples {
		if sm.name == "openstack_api_requests_total" && sm.labels["request"] != sm.labels["operation"] {
			t.Errorf("request label %q differs from operation %q", sm.labels["request"], sm.labels["operation"])
		}
	}
	if services := labelValues(samples, "openstack_api_requests_total", "service"); len(services) != 3 {
		t.Errorf("services = %v, want identity, volumev3 and compute", services)
	}
	if n, _ := find(samples, "openstack_api_token_renewals_total", labels("cloud", "default")); n < 1 {
		t.Errorf("openstack_api_token_renewals_total{cloud=\"default\"} = %v, want ≥ 1", n)
	}
	if _, found := find(samples, "openstack_api_request_retries_total", nil); found {
		t.Errorf("retries recorded on a cloud without faults")
	}

	// Controller waits: create (available), attach (in-use), detach
	// (available) all reached their state.
	if n, _ := find(samples, "cinder_csi_controller_wait_duration_seconds_count", labels("operation", "volume_wait", "outcome", "done")); n < 2 {
		t.Errorf("volume_wait done = %v, want ≥ 2 (create and attach)", n)
	}
	for _, outcome := range []string{"error", "timeout"} {
		if n, found := find(samples, "cinder_csi_controller_wait_duration_seconds_count", labels("outcome", outcome)); found {
			t.Errorf("waits with outcome %s = %v, want none", outcome, n)
		}
	}

	// Node: the device found once through its by-id link, one ext4 mkfs,
	// two mounts (stage and publish), no errors, no stale mount.
	if n, _ := find(samples, "cinder_csi_node_device_discovery_duration_seconds_count", labels("method", "by-id")); n != 1 {
		t.Errorf("device discovery by-id = %v, want 1 (methods seen: %v)", n,
			labelValues(samples, "cinder_csi_node_device_discovery_duration_seconds_count", "method"))
	}
	if n, _ := find(samples, "cinder_csi_node_format_duration_seconds_count", labels("fstype", "ext4")); n != 1 {
		t.Errorf("ext4 formats = %v, want 1", n)
	}
	if n, _ := find(samples, "cinder_csi_node_mount_duration_seconds_count", nil); n != 2 {
		t.Errorf("mounts = %v, want 2 (stage and publish)", n)
	}
	for _, name := range []string{"cinder_csi_node_device_discovery_errors_total", "cinder_csi_node_format_errors_total",
		"cinder_csi_node_mount_errors_total", "cinder_csi_node_stale_mounts_total"} {
		if n, _ := find(samples, name, nil); n != 0 {
			t.Errorf("%s = %v, want 0", name, n)
		}
	}
	// Process collectors are on the same registry.
	if _, found := find(samples, "go_goroutines", nil); !found {
		t.Errorf("go_goroutines missing")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
