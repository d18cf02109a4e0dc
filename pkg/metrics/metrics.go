// Package metrics holds the driver's Prometheus metrics: the OpenStack API
// series the reference plugin exported (names kept, so existing dashboards
// keep working), CSI RPC series, controller wait series and node series.
//
// A *Metrics owns its own prometheus.Registry; nothing is registered on the
// global default registry, so tests can build as many as they like. Every
// method is safe on a nil *Metrics and then does nothing: servers and tests
// that run without metrics simply pass nil.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes the driver's own metrics. The OpenStack API metrics
// keep the reference plugin's "openstack_api_" names instead.
const Namespace = "cinder_csi"

// Bucket layouts. Each states what it has to resolve.
var (
	// OpenStack API calls: Keystone and Cinder GETs answer in tens of
	// milliseconds on a healthy cloud, mutating Nova calls take a few
	// seconds, and anything past a minute is a stuck API or a client
	// timeout. The layout separates those regimes.
	apiBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

	// CSI RPCs: identity and capability calls finish in microseconds to
	// milliseconds; attach, create-from-snapshot and backups take from
	// seconds to the sidecars' default 2–5 minute deadlines.
	rpcBuckets = []float64{0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

	// State waits (volume available, attached, detached, extended): the
	// reference plugin's fixed loops gave up after 14–60 s; our waits follow
	// the gRPC deadline and may run up to the sidecar timeout.
	waitBuckets = []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}

	// Rate-limit waits: the client limiter delays by milliseconds, a
	// Retry-After by whole seconds.
	rateLimitBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60}

	// Node host operations: a by-id symlink lookup takes microseconds, a
	// udev settle or SCSI rescan seconds; mkfs of a large ext4 volume can
	// take tens of seconds (lazy init off) and XFS a few seconds.
	nodeBuckets = []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

// Device discovery methods, the values of the "method" label of the
// device-discovery metrics. Any other value is recorded as "other".
const (
	DiscoveryByID     = "by-id"    // /dev/disk/by-id serial links
	DiscoverySysfs    = "sysfs"    // block device serials read from sysfs
	DiscoveryMetadata = "metadata" // metadata service device tags
	DiscoveryHint     = "hint"     // the device path Nova reported at publish
	// DiscoveryNone labels a lookup in which no method found the device
	// before the deadline.
	DiscoveryNone = "none"
)

// Metrics is the driver's metric set with its own registry. The zero value
// is not usable; build one with New. A nil *Metrics is a valid no-op.
type Metrics struct {
	registry *prometheus.Registry

	apiDuration  *prometheus.HistogramVec
	apiRequests  *prometheus.CounterVec
	apiErrors    *prometheus.CounterVec
	apiRetries   *prometheus.CounterVec
	rateLimit    *prometheus.HistogramVec
	tokenRenewal *prometheus.CounterVec

	waitDuration *prometheus.HistogramVec

	rpcDuration *prometheus.HistogramVec
	rpcRequests *prometheus.CounterVec

	discoveryDuration *prometheus.HistogramVec
	discoveryErrors   *prometheus.CounterVec
	formatDuration    *prometheus.HistogramVec
	formatErrors      *prometheus.CounterVec
	mountDuration     prometheus.Histogram
	mountErrors       prometheus.Counter
	staleMounts       prometheus.Counter

	kataOnce    sync.Once
	kataRecords atomic.Pointer[func() int]
}

// New builds a Metrics with every series registered on a fresh registry,
// together with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}

	m.initAPI()
	m.initControllerAndRPC()
	m.initNode()

	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.apiDuration, m.apiRequests, m.apiErrors, m.apiRetries, m.rateLimit, m.tokenRenewal,
		m.waitDuration,
		m.rpcDuration, m.rpcRequests,
		m.discoveryDuration, m.discoveryErrors, m.formatDuration, m.formatErrors,
		m.mountDuration, m.mountErrors, m.staleMounts,
	)
	return m
}

// initAPI builds the OpenStack API series.
func (m *Metrics) initAPI() {
	// The reference plugin labelled the OpenStack API series only with
	// "request" (e.g. "volume_create"). We keep that label with the same
	// values and add service, operation (equal to request) and code. Queries
	// that select or aggregate by request keep working; see docs/metrics.md.
	apiLabels := []string{"request", "service", "operation", "code"}
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "openstack_api_request_duration_seconds",
		Help:    "Duration of OpenStack API HTTP requests, each retry counted separately.",
		Buckets: apiBuckets,
	}, apiLabels)
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openstack_api_requests_total",
		Help: "OpenStack API HTTP requests, each retry counted separately.",
	}, apiLabels)
	m.apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openstack_api_request_errors_total",
		Help: "OpenStack API HTTP requests that got no response or a status of 400 or more.",
	}, apiLabels)
	m.apiRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openstack_api_request_retries_total",
		Help: "OpenStack API requests retried, by reason (5xx, 429, conn).",
	}, []string{"service", "operation", "reason"})
	m.rateLimit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "openstack_api_rate_limit_wait_seconds",
		Help:    "Time spent waiting on the client-side rate limiter or a Retry-After before an OpenStack request.",
		Buckets: rateLimitBuckets,
	}, []string{"service"})
	m.tokenRenewal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openstack_api_token_renewals_total",
		Help: "Keystone tokens issued or renewed, by cloud (the [Global \"name\"] section; \"default\" for [Global]).",
	}, []string{"cloud"})
}

// initControllerAndRPC builds the controller wait and CSI RPC series.
func (m *Metrics) initControllerAndRPC() {
	m.waitDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "controller",
		Name:    "wait_duration_seconds",
		Help:    "Time the controller spent waiting for a Cinder or Nova state change, by operation and outcome (done, error, timeout).",
		Buckets: waitBuckets,
	}, []string{"operation", "outcome"})

	m.rpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "rpc",
		Name:    "duration_seconds",
		Help:    "Duration of CSI RPCs served, by method and gRPC code.",
		Buckets: rpcBuckets,
	}, []string{"method", "code"})
	m.rpcRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "rpc",
		Name: "requests_total",
		Help: "CSI RPCs served, by method and gRPC code.",
	}, []string{"method", "code"})
}

// initNode builds the node host-operation series.
func (m *Metrics) initNode() {
	m.discoveryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "node",
		Name:    "device_discovery_duration_seconds",
		Help:    "Time to find a volume's block device, by discovery method (by-id, sysfs, metadata, hint).",
		Buckets: nodeBuckets,
	}, []string{"method"})
	m.discoveryErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "node",
		Name: "device_discovery_errors_total",
		Help: "Device discovery attempts that failed, by discovery method.",
	}, []string{"method"})
	m.formatDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "node",
		Name:    "format_duration_seconds",
		Help:    "Time to create a filesystem on a volume, by filesystem type.",
		Buckets: nodeBuckets,
	}, []string{"fstype"})
	m.formatErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "node",
		Name: "format_errors_total",
		Help: "Filesystem creations that failed, by filesystem type.",
	}, []string{"fstype"})
	m.mountDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "node",
		Name:    "mount_duration_seconds",
		Help:    "Time to mount a volume (stage or publish).",
		Buckets: nodeBuckets,
	})
	m.mountErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "node",
		Name: "mount_errors_total",
		Help: "Mounts that failed.",
	})
	m.staleMounts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "node",
		Name: "stale_mounts_total",
		Help: "Stale mounts (corrupted or pointing at a vanished device) detected and repaired.",
	})
}

// Registry returns the registry the metrics live on, for tests and for
// callers that want to add their own collectors. Nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// Handler serves the registry in the Prometheus exposition format. On a nil
// *Metrics it answers 404, so a /metrics route can be mounted regardless.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveRequest records one OpenStack API HTTP request (openstack.Observer).
// statusCode 0 means no response arrived; it is labelled "none" and counted
// as an error, as is any status of 400 or more (a 404 on an idempotent
// delete included, as the reference plugin counted it).
func (m *Metrics) ObserveRequest(service, operation string, statusCode int, d time.Duration) {
	if m == nil {
		return
	}
	code := "none"
	if statusCode > 0 {
		code = strconv.Itoa(statusCode)
	}
	labels := prometheus.Labels{"request": operation, "service": service, "operation": operation, "code": code}
	m.apiDuration.With(labels).Observe(d.Seconds())
	m.apiRequests.With(labels).Inc()
	if statusCode == 0 || statusCode >= 400 {
		m.apiErrors.With(labels).Inc()
	}
}

// ObserveRetry records a retried OpenStack request (openstack.Observer).
func (m *Metrics) ObserveRetry(service, operation, reason string) {
	if m == nil {
		return
	}
	m.apiRetries.WithLabelValues(service, operation, reason).Inc()
}

// ObserveRateLimitWait records time spent waiting before an OpenStack
// request because of rate limiting (openstack.Observer).
func (m *Metrics) ObserveRateLimitWait(service string, d time.Duration) {
	if m == nil {
		return
	}
	m.rateLimit.WithLabelValues(service).Observe(d.Seconds())
}

// ObserveTokenRenewal records a Keystone token issued for a cloud
// (openstack.Observer). The unnamed [Global] cloud is labelled "default".
func (m *Metrics) ObserveTokenRenewal(cloud string) {
	if m == nil {
		return
	}
	if cloud == "" {
		cloud = "default"
	}
	m.tokenRenewal.WithLabelValues(cloud).Inc()
}

// ObserveWait records a controller state wait (openstack.Observer); outcome
// is "done", "error" or "timeout".
func (m *Metrics) ObserveWait(operation string, d time.Duration, outcome string) {
	if m == nil {
		return
	}
	m.waitDuration.WithLabelValues(operation, outcome).Observe(d.Seconds())
}

// ObserveRPC records one served CSI RPC. method is the short name
// ("CreateVolume"), code the gRPC code name ("OK", "NotFound").
func (m *Metrics) ObserveRPC(method, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.rpcDuration.WithLabelValues(method, code).Observe(d.Seconds())
	m.rpcRequests.WithLabelValues(method, code).Inc()
}

// ObserveDeviceDiscovery records one device lookup by one method (see the
// Discovery* constants); err is its failure, nil on success.
func (m *Metrics) ObserveDeviceDiscovery(method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	switch method {
	case DiscoveryByID, DiscoverySysfs, DiscoveryMetadata, DiscoveryHint, DiscoveryNone:
	default:
		method = "other"
	}
	m.discoveryDuration.WithLabelValues(method).Observe(d.Seconds())
	if err != nil {
		m.discoveryErrors.WithLabelValues(method).Inc()
	}
}

// knownFSTypes bounds the fstype label: the type comes from a user's volume
// capability, and an unbounded label would let users grow the series set.
var knownFSTypes = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true}

// ObserveFormat records one mkfs run; err is its failure, nil on success.
// File system types other than ext2/3/4, xfs and btrfs are labelled "other".
func (m *Metrics) ObserveFormat(fstype string, d time.Duration, err error) {
	if m == nil {
		return
	}
	if !knownFSTypes[fstype] {
		fstype = "other"
	}
	m.formatDuration.WithLabelValues(fstype).Observe(d.Seconds())
	if err != nil {
		m.formatErrors.WithLabelValues(fstype).Inc()
	}
}

// ObserveMount records one mount (stage or publish); err is its failure.
func (m *Metrics) ObserveMount(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.mountDuration.Observe(d.Seconds())
	if err != nil {
		m.mountErrors.Inc()
	}
}

// StaleMount counts one stale mount detected.
func (m *Metrics) StaleMount() {
	if m == nil {
		return
	}
	m.staleMounts.Inc()
}

// SetKataRecordsFunc makes the cinder_csi_node_kata_records gauge report
// f() at each scrape. The gauge is registered on the first call, so a
// controller or a node without Kata support exports no such series; later
// calls replace f. A nil f reports 0.
func (m *Metrics) SetKataRecordsFunc(f func() int) {
	if m == nil {
		return
	}
	m.kataRecords.Store(&f)
	m.kataOnce.Do(func() {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "node",
			Name: "kata_records",
			Help: "Kata direct-volume records currently held on this node.",
		}, func() float64 {
			if fp := m.kataRecords.Load(); fp != nil && *fp != nil {
				return float64((*fp)())
			}
			return 0
		}))
	})
}
