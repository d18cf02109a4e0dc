package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// The cloud layer takes our metrics as its observer.
var _ openstack.Observer = (*Metrics)(nil)

// sample finds the metric family name with exactly the given labels and
// returns it, or nil.
func sample(t *testing.T, m *Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, metric := range f.GetMetric() {
			if len(metric.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range metric.GetLabel() {
				if want, ok := labels[lp.GetName()]; !ok || want != lp.GetValue() {
					continue next
				}
			}
			return metric
		}
	}
	return nil
}

func counterValue(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	s := sample(t, m, name, labels)
	if s == nil {
		return 0
	}
	return s.GetCounter().GetValue()
}

func histogramCount(t *testing.T, m *Metrics, name string, labels map[string]string) uint64 {
	t.Helper()
	s := sample(t, m, name, labels)
	if s == nil {
		return 0
	}
	return s.GetHistogram().GetSampleCount()
}

func TestObserveRequestKeepsReferenceNamesAndAddsLabels(t *testing.T) {
	tests := []struct {
		name       string
		statusCode int
		wantCode   string
		wantError  bool
	}{
		{"success", 202, "202", false},
		{"not found counts as an error, as in the reference plugin", 404, "404", true},
		{"server error", 503, "503", true},
		{"no response", 0, "none", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			m.ObserveRequest("volumev3", "volume_create", tt.statusCode, 1500*time.Millisecond)
			labels := map[string]string{"request": "volume_create", "service": "volumev3", "operation": "volume_create", "code": tt.wantCode}
			if got := counterValue(t, m, "openstack_api_requests_total", labels); got != 1 {
				t.Errorf("openstack_api_requests_total%v = %v, want 1", labels, got)
			}
			if got := histogramCount(t, m, "openstack_api_request_duration_seconds", labels); got != 1 {
				t.Errorf("openstack_api_request_duration_seconds%v count = %v, want 1", labels, got)
			}
			wantErrors := 0.0
			if tt.wantError {
				wantErrors = 1
			}
			if got := counterValue(t, m, "openstack_api_request_errors_total", labels); got != wantErrors {
				t.Errorf("openstack_api_request_errors_total%v = %v, want %v", labels, got, wantErrors)
			}
		})
	}
}

func TestCloudObserverSeries(t *testing.T) {
	m := New()
	m.ObserveRetry("compute", "server_attach_volume", "429")
	m.ObserveRetry("compute", "server_attach_volume", "429")
	m.ObserveRateLimitWait("volumev3", 2*time.Second)
	m.ObserveTokenRenewal("")
	m.ObserveTokenRenewal("region-two")
	m.ObserveWait("volume_attach", 12*time.Second, "timeout")

	if got := counterValue(t, m, "openstack_api_request_retries_total", map[string]string{"service": "compute", "operation": "server_attach_volume", "reason": "429"}); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
	if got := histogramCount(t, m, "openstack_api_rate_limit_wait_seconds", map[string]string{"service": "volumev3"}); got != 1 {
		t.Errorf("rate-limit waits = %v, want 1", got)
	}
	if got := counterValue(t, m, "openstack_api_token_renewals_total", map[string]string{"cloud": "default"}); got != 1 {
		t.Errorf("token renewals for the unnamed cloud = %v, want 1 under cloud=\"default\"", got)
	}
	if got := counterValue(t, m, "openstack_api_token_renewals_total", map[string]string{"cloud": "region-two"}); got != 1 {
		t.Errorf("token renewals for region-two = %v, want 1", got)
	}
	s := sample(t, m, "cinder_csi_controller_wait_duration_seconds", map[string]string{"operation": "volume_attach", "outcome": "timeout"})
	if s == nil || s.GetHistogram().GetSampleCount() != 1 || s.GetHistogram().GetSampleSum() != 12 {
		t.Errorf("wait sample = %v, want one observation of 12 s", s)
	}
}

func TestObserveRPC(t *testing.T) {
	m := New()
	m.ObserveRPC("CreateVolume", "OK", time.Second)
	m.ObserveRPC("CreateVolume", "Aborted", time.Second)
	for _, code := range []string{"OK", "Aborted"} {
		labels := map[string]string{"method": "CreateVolume", "code": code}
		if got := counterValue(t, m, "cinder_csi_rpc_requests_total", labels); got != 1 {
			t.Errorf("rpc requests %v = %v, want 1", labels, got)
		}
		if got := histogramCount(t, m, "cinder_csi_rpc_duration_seconds", labels); got != 1 {
			t.Errorf("rpc duration count %v = %v, want 1", labels, got)
		}
	}
}

func TestNodeSeriesBoundTheirLabels(t *testing.T) {
	m := New()
	failed := errors.New("no such device")
	m.ObserveDeviceDiscovery(DiscoveryByID, time.Millisecond, nil)
	m.ObserveDeviceDiscovery(DiscoverySysfs, time.Millisecond, failed)
	m.ObserveDeviceDiscovery("/dev/disk/by-path/user-controlled", time.Millisecond, failed)
	m.ObserveFormat("ext4", 3*time.Second, nil)
	m.ObserveFormat("xfs", time.Second, failed)
	m.ObserveFormat("zfs-from-a-user-capability", time.Second, nil)
	m.ObserveMount(time.Millisecond, nil)
	m.ObserveMount(time.Millisecond, failed)
	m.StaleMount()

	checks := []struct {
		name   string
		labels map[string]string
		hist   bool
		want   float64
	}{
		{"cinder_csi_node_device_discovery_duration_seconds", map[string]string{"method": "by-id"}, true, 1},
		{"cinder_csi_node_device_discovery_errors_total", map[string]string{"method": "by-id"}, false, 0},
		{"cinder_csi_node_device_discovery_errors_total", map[string]string{"method": "sysfs"}, false, 1},
		{"cinder_csi_node_device_discovery_errors_total", map[string]string{"method": "other"}, false, 1},
		{"cinder_csi_node_format_duration_seconds", map[string]string{"fstype": "ext4"}, true, 1},
		{"cinder_csi_node_format_errors_total", map[string]string{"fstype": "xfs"}, false, 1},
		{"cinder_csi_node_format_duration_seconds", map[string]string{"fstype": "other"}, true, 1},
		{"cinder_csi_node_mount_duration_seconds", map[string]string{}, true, 2},
		{"cinder_csi_node_mount_errors_total", map[string]string{}, false, 1},
		{"cinder_csi_node_stale_mounts_total", map[string]string{}, false, 1},
	}
	for _, c := range checks {
		var got float64
		if c.hist {
			got = float64(histogramCount(t, m, c.name, c.labels))
		} else {
			got = counterValue(t, m, c.name, c.labels)
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestKataRecordsGaugeAppearsOnlyOnceSet(t *testing.T) {
	m := New()
	if s := sample(t, m, "cinder_csi_node_kata_records", map[string]string{}); s != nil {
		t.Fatalf("kata gauge exported before SetKataRecordsFunc: %v", s)
	}
	m.SetKataRecordsFunc(func() int { return 3 })
	if got := sample(t, m, "cinder_csi_node_kata_records", map[string]string{}).GetGauge().GetValue(); got != 3 {
		t.Errorf("kata records = %v, want 3", got)
	}
	m.SetKataRecordsFunc(func() int { return 5 }) // replacing must not re-register
	if got := sample(t, m, "cinder_csi_node_kata_records", map[string]string{}).GetGauge().GetValue(); got != 5 {
		t.Errorf("kata records after replacing the func = %v, want 5", got)
	}
	m.SetKataRecordsFunc(nil)
	if got := sample(t, m, "cinder_csi_node_kata_records", map[string]string{}).GetGauge().GetValue(); got != 0 {
		t.Errorf("kata records with a nil func = %v, want 0", got)
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("volumev3", "volume_get", 200, time.Second)
	m.ObserveRetry("volumev3", "volume_get", "5xx")
	m.ObserveRateLimitWait("volumev3", time.Second)
	m.ObserveTokenRenewal("")
	m.ObserveWait("volume_attach", time.Second, "done")
	m.ObserveRPC("Probe", "OK", time.Second)
	m.ObserveDeviceDiscovery(DiscoveryByID, time.Second, nil)
	m.ObserveFormat("ext4", time.Second, nil)
	m.ObserveMount(time.Second, nil)
	m.StaleMount()
	m.SetKataRecordsFunc(func() int { return 1 })
	if m.Registry() != nil {
		t.Error("Registry() on nil Metrics is not nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler status = %d, want 404", rec.Code)
	}
}

func TestTwoInstancesDoNotShareARegistry(t *testing.T) {
	a, b := New(), New() // would panic on duplicate registration if global
	a.StaleMount()
	if got := counterValue(t, b, "cinder_csi_node_stale_mounts_total", map[string]string{}); got != 0 {
		t.Errorf("second instance saw the first one's count: %v", got)
	}
}

func TestHandlerServesExpositionFormat(t *testing.T) {
	m := New()
	m.ObserveRequest("volumev3", "volume_create", 202, time.Second)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`openstack_api_requests_total{code="202",operation="volume_create",request="volume_create",service="volumev3"} 1`,
		`# TYPE openstack_api_request_duration_seconds histogram`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
