package openstack

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Service names, as reported to the Observer.
const (
	serviceIdentity = "identity"
	serviceVolume   = "volumev3"
	serviceCompute  = "compute"
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
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.obs.ObserveRequest(c.service, c.op, status, time.Since(start))
	return resp, err
}

// nopObserver is used when Options.Observer is nil.
type nopObserver struct{}

func (nopObserver) ObserveRequest(string, string, int, time.Duration) {}
func (nopObserver) ObserveRetry(string, string, string)               {}
func (nopObserver) ObserveRateLimitWait(string, time.Duration)        {}
func (nopObserver) ObserveTokenRenewal(string)                        {}
func (nopObserver) ObserveWait(string, time.Duration, string)         {}
