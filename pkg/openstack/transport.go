package openstack

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// Service names, as reported to the Observer.
const (
	serviceIdentity = "identity"
	serviceVolume   = "volumev3"
	serviceCompute  = "compute"
	serviceShare    = "sharev2"
)

// AllServices keys a RateLimit that every request of a cloud passes,
// whatever its service: clouds commonly limit a project across all their
// endpoints (one haproxy or API gateway in front).
const AllServices = "*"

type callKey struct{}

// call is what the cloud layer knows about a request that the HTTP layer
// does not: the service and a stable operation name, for metrics, the rate
// limiter and the retry policy.
type call struct {
	service string
	op      string
}

func withCall(ctx context.Context, service, op string) context.Context {
	return context.WithValue(ctx, callKey{}, call{service: service, op: op})
}

// callOf returns the call recorded in ctx, or one derived from the request
// (token requests, version documents, gophercloud-internal requests).
func callOf(req *http.Request) call {
	path := req.URL.Path
	if strings.HasSuffix(path, "/auth/tokens") {
		op := "token_issue"
		if req.Method == http.MethodGet {
			op = "token_validate"
		}
		return call{service: serviceIdentity, op: op}
	}
	if c, ok := req.Context().Value(callKey{}).(call); ok {
		return c
	}
	return call{service: "unknown", op: deriveOp(req.Method, path)}
}

var idSegment = regexp.MustCompile(`^[0-9a-fA-F-]{16,}$`)

// deriveOp names a request we did not label, from its method and path with
// ids replaced, so that the label set stays bounded.
func deriveOp(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if idSegment.MatchString(p) {
			p = "{id}"
		}
		out = append(out, p)
	}
	return strings.ToLower(method) + " /" + strings.Join(out, "/")
}

// observingTransport applies the client-side rate limit and reports each
// request to the Observer. It never logs or reports headers or bodies.
type observingTransport struct {
	base     http.RoundTripper
	obs      Observer
	limiters map[string]*tokenBucket
}

func (t *observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callOf(req)
	for _, key := range [2]string{c.service, AllServices} {
		lim := t.limiters[key]
		if lim == nil {
			continue
		}
		waited, err := lim.wait(req.Context())
		if waited > 0 {
			t.obs.ObserveRateLimitWait(c.service, waited)
		}
		if err != nil {
			return nil, err
		}
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	took := time.Since(start)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.obs.ObserveRequest(c.service, c.op, status, took)
	logCall(req, c, resp, err, took)
	return resp, err
}

// logCall logs one HTTP request with the service's request id, so that an
// operator can follow it into the Cinder, Nova or Keystone logs. The logger
// comes from the request context, which carries the CSI call's requestID
// and volume id. A success or a 404 (an idempotent delete, a poll of a
// vanished resource) is routine and logged at V(4); any other failure at
// V(2), since a retried one never reaches the CSI error. The final failure
// also carries the id in its *Error, which the gRPC interceptor logs.
// Only the method, the operation name, the status and the id are logged:
// never a URL (it may carry credentials), a header or a body (tokens).
func logCall(req *http.Request, c call, resp *http.Response, err error, took time.Duration) {
	level := klog.Level(4)
	failed := err != nil || resp.StatusCode >= 400
	if failed && (resp == nil || resp.StatusCode != http.StatusNotFound) {
		level = 2
	}
	logger := klog.FromContext(req.Context()).V(int(level))
	if !logger.Enabled() {
		return
	}
	kv := []any{"service", c.service, "operation", c.op, "method", req.Method}
	if resp != nil {
		kv = append(kv, "status", resp.StatusCode, "openstackRequestID", responseRequestID(resp.Header))
	} else {
		// classify keeps the cause and drops the URL.
		msg := "request failed"
		var e *Error
		if errors.As(classify(err, c.op, ""), &e) {
			msg = e.Message
		}
		kv = append(kv, "status", "none", "err", msg)
	}
	kv = append(kv, "took", took)
	if failed {
		logger.Info("OpenStack API call failed", kv...)
		return
	}
	logger.Info("OpenStack API call", kv...)
}

// responseRequestID is the id a service gave its answer: Cinder, Keystone
// and current Nova send X-Openstack-Request-Id, older Nova only
// X-Compute-Request-Id.
func responseRequestID(h http.Header) string {
	if id := h.Get(requestIDHeader); id != "" {
		return id
	}
	return h.Get("X-Compute-Request-Id")
}

// nopObserver is used when Options.Observer is nil.
type nopObserver struct{}

func (nopObserver) ObserveRequest(string, string, int, time.Duration) {}
func (nopObserver) ObserveRetry(string, string, string)               {}
func (nopObserver) ObserveRateLimitWait(string, time.Duration)        {}
func (nopObserver) ObserveTokenRenewal(string)                        {}
func (nopObserver) ObserveWait(string, time.Duration, string)         {}
