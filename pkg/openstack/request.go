package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-csi/cinder-csi/pkg/util/backoff"
)

// req is one API call: which service and operation (for metrics and the
// retry policy), what it concerns (for error messages), and its HTTP shape.
type req struct {
	service  string
	op       string
	resource string
	method   string
	url      string
	body     any
	out      any
	ok       []int
	// reconcile, for a mutating request, tells after an ambiguous failure
	// (see ambiguous) whether the service acted on it anyway: it looks
	// the result up by its idempotency key (a create by name and
	// ownership metadata, an attachment in the server's list, an extend
	// by the volume's size) and records what it found for the caller.
	// done=false means the request had no effect and is sent again.
	reconcile func(ctx context.Context) (done bool, err error)
}

// maxAmbiguousAttempts bounds the sends of one mutating request whose
// answers were ambiguous. Each retry costs a lookup; three covers the
// occasional 500 of a busy API worker (csi-sanity with 5% injected
// faults sees at most two in a row) without hiding a service that
// fails every request.
const maxAmbiguousAttempts = 3

// do sends r through gophercloud (auth, re-auth on 401, retries of what
// cannot have been processed) and classifies any failure. A mutating
// request with a reconcile function is also retried after an ambiguous
// failure, once reconcile has shown it had no effect.
func do(ctx context.Context, sc *gophercloud.ServiceClient, r req) error {
	ctx = withCall(ctx, r.service, r.op)
	opts := &gophercloud.RequestOpts{OkCodes: r.ok}
	if r.body != nil {
		opts.JSONBody = r.body
	}
	if r.out != nil {
		opts.JSONResponse = r.out
	}
	for attempt := uint(1); ; attempt++ {
		_, err := sc.Request(ctx, r.method, r.url, opts)
		if err == nil || r.reconcile == nil || attempt >= maxAmbiguousAttempts || !ambiguous(err) || ctx.Err() != nil {
			return classify(err, r.op, r.resource)
		}
		done, lookupErr := r.reconcile(ctx)
		if lookupErr != nil {
			// Unknown outcome: report the request's own failure; the
			// caller's retry reconciles by the same key.
			return classify(err, r.op, r.resource)
		}
		if done {
			return nil
		}
		if backoff.SleepWithin(ctx, retryDelay(attempt)) != nil {
			return classify(err, r.op, r.resource)
		}
	}
}

// ambiguous reports a failure after which a mutating request may or may
// not have been acted on: a 5xx other than 503 (which the retry policy
// already repeats), or a connection that broke after the request was sent.
func ambiguous(err error) bool {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return code.Actual >= 500 && code.Actual != http.StatusServiceUnavailable
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return isConnError(err) && !notSent(err)
}

// listQuery renders the Cinder list filters. The metadata filter is a
// JSON object, which Cinder parses as a Python literal.
func listQuery(o ListOpts, withFilters bool) string {
	q := url.Values{}
	if withFilters {
		if o.Name != "" {
			q.Set("name", o.Name)
		}
		if len(o.Metadata) > 0 {
			b, _ := json.Marshal(o.Metadata)
			q.Set("metadata", string(b))
		}
	}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.VolumeID != "" {
		q.Set("volume_id", o.VolumeID)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Marker != "" {
		q.Set("marker", o.Marker)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// matchesMeta reports whether have includes every pair of want.
func matchesMeta(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// maxListPages bounds a listing that follows every page: at Cinder's
// default osapi_max_limit of 1000 that is 100k resources, beyond any
// project we serve, and it stops a service that loops its links.
const maxListPages = 100

type gopherClient = *gophercloud.ServiceClient
