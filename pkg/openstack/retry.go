package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-csi/cinder-csi/pkg/util/backoff"
)

// Retry policy.
//
// Idempotent requests (GET, HEAD) are retried on any 5xx, on 429 and on
// connection errors, including a response body cut short.
//
// Mutating requests (POST, PUT, DELETE) are retried only when the service
// cannot have acted on them:
//   - 429: OpenStack's rate limiting middleware rejects before the API
//     handler runs;
//   - 503: answered by the load balancer with no backend, or by the API
//     before it dispatched the work;
//   - a connection that failed while dialling, so no byte was sent.
//
// DELETE is idempotent: it is also retried on any 5xx, and a repeat of a
// delete that was acted on answers 404, which every caller takes as done.
// Issuing a token changes nothing that lasts, so it too is retried on any
// 5xx.
//
// A 500, 502 or 504 on another mutating request may come after the service
// acted on it, so it is not repeated here: do() asks the request's
// reconcile function whether it took effect (a create looks itself up by
// name and ownership metadata) and sends it again only if not.
//
// Every wait, for a backoff or a Retry-After, ends with the caller's
// context; a wait that cannot finish before the deadline is not started.
const (
	// maxAttempts bounds one call to 6 tries (5 retries). With the backoff
	// below that is about 3 s of sleeping without Retry-After, which
	// covers an API worker restart or a failover of the load balancer's
	// backend without holding a CSI call (sidecar timeout 3 min) long.
	maxAttempts = 6
	// retryBase and retryCap shape the exponential backoff: 100 ms, 200 ms,
	// 400 ms, 800 ms, 1.6 s, each with up to 50% jitter so that many
	// waiters do not come back in step.
	retryBase = 100 * time.Millisecond
	retryCap  = 5 * time.Second
	// maxRetryAfter caps an honoured Retry-After: a service asking for
	// more than a minute is not coming back within one CSI call anyway.
	maxRetryAfter = time.Minute
)

type onceKey struct{}

// withoutRetry marks ctx so that its requests are sent once and their
// failures returned at once: for a poll, whose own schedule is the retry
// and which must not hold other waiters while one request backs off.
func withoutRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, onceKey{}, true)
}

func sendOnce(ctx context.Context) bool {
	once, _ := ctx.Value(onceKey{}).(bool)
	return once
}

type retryPolicy struct {
	obs Observer
}

func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// requestBackoff is the delay before each retry of a request.
var requestBackoff = backoff.Exponential{First: retryBase, Max: retryCap, Jitter: true}

// retryDelay returns the jittered delay before retry number n (1-based).
func retryDelay(n uint) time.Duration { return requestBackoff.Delay(int(n)) }

func callFor(ctx context.Context, rawURL string) call {
	if strings.HasSuffix(rawURL, "/auth/tokens") {
		return call{service: serviceIdentity, op: "token_issue"}
	}
	if c, ok := ctx.Value(callKey{}).(call); ok {
		return c
	}
	path := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		path = u.Path
	}
	return call{service: "unknown", op: deriveOp("", path)}
}

// onRateLimited is gophercloud's RetryBackoffFunc: called for a 429.
func (p retryPolicy) onRateLimited(ctx context.Context, respErr *gophercloud.ErrUnexpectedResponseCode, _ error, n uint) error {
	if n >= maxAttempts || sendOnce(ctx) {
		return *respErr
	}
	wait := retryAfter(respErr.ResponseHeader)
	if wait <= 0 {
		wait = retryDelay(n)
	}
	if wait > maxRetryAfter {
		return *respErr
	}
	c := callFor(ctx, respErr.URL)
	if err := backoff.SleepWithin(ctx, wait); err != nil {
		// The caller learns the service's Retry-After through the
		// classified error and can hand it on.
		return *respErr
	}
	p.obs.ObserveRateLimitWait(c.service, wait)
	p.obs.ObserveRetry(c.service, c.op, "429")
	return nil
}

// onFailure is gophercloud's RetryFunc: called for every other failed
// request. Returning nil retries it.
func (p retryPolicy) onFailure(ctx context.Context, method, rawURL string, _ *gophercloud.RequestOpts, err error, n uint) error {
	if n >= maxAttempts || ctx.Err() != nil || sendOnce(ctx) {
		return err
	}
	reason, ok := retryReason(method, err)
	if !ok && strings.HasSuffix(rawURL, "/auth/tokens") {
		reason, ok = retryReason(http.MethodGet, err)
	}
	if !ok {
		return err
	}
	wait := retryDelay(n)
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		if ra := retryAfter(code.ResponseHeader); ra > 0 && ra <= maxRetryAfter {
			wait = ra
		}
	}
	if sleepErr := backoff.SleepWithin(ctx, wait); sleepErr != nil {
		return err
	}
	c := callFor(ctx, rawURL)
	p.obs.ObserveRetry(c.service, c.op, reason)
	return nil
}

// retryReason decides whether a failed request may be repeated, and names
// why for the retry metric.
func retryReason(method string, err error) (string, bool) {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		switch {
		case code.Actual == http.StatusTooManyRequests:
			return "429", true
		case code.Actual == http.StatusServiceUnavailable:
			return "5xx", true
		case code.Actual >= 500:
			return "5xx", idempotent(method) || method == http.MethodDelete
		}
		return "", false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	if idempotent(method) {
		var syn *json.SyntaxError
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &syn) || isConnError(err) {
			return "conn", true
		}
		return "", false
	}
	if notSent(err) {
		return "conn", true
	}
	return "", false
}
