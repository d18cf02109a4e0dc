package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"
)

// requestIDHeader carries the id that follows a request through the
// service logs.
const requestIDHeader = "X-Openstack-Request-Id"

// maxMessageLen bounds the service message copied into an error; Cinder and
// Nova messages are one sentence, anything longer is a stack trace or HTML.
const maxMessageLen = 300

// classify turns any error from a gophercloud call into an *Error. op names
// the operation, resource the volume, snapshot or server concerned.
func classify(err error, op, resource string) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Resource: quoteIfUnprintable(resource)}

	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) {
		e.Kind = KindForbidden
		e.Message = "re-authentication failed; check the credentials in the cloud config"
		if inner := classify(reauth.ErrReauth, "token_issue", ""); inner != nil {
			var ie *Error
			if errors.As(inner, &ie) {
				e.StatusCode = ie.StatusCode
				e.RequestID = ie.RequestID
				if ie.Kind == KindUnavailable || ie.Kind == KindRateLimited {
					// Keystone being down is not a credentials problem.
					e.Kind = ie.Kind
					e.Message = "re-authentication failed: identity service " + ie.Kind.String()
				}
			}
		}
		return e
	}

	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		fillFromResponse(e, code.Actual, code.ResponseHeader, code.Body)
		return e
	}

	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTimeout
		e.Message = "deadline exceeded"
		e.Err = context.DeadlineExceeded
		return e
	case errors.Is(err, context.Canceled):
		e.Kind = KindTimeout
		e.Message = "request cancelled"
		e.Err = context.Canceled
		return e
	}
	if ue, ok := invalidRequestURL(err); ok {
		// Nothing was sent: the URL built from the caller's input (an id
		// with a control character) does not parse. That is the caller's
		// input, not the service being unreachable.
		e.Kind = KindBadRequest
		e.Message = "the request URL is invalid: " + ue.Err.Error()
		e.Err = ue.Err
		return e
	}
	if isConnError(err) {
		e.Kind = KindUnavailable
		e.Message = connMessage(err)
		e.Err = scrubURLError(err)
		return e
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		e.Kind = KindUnavailable
		e.Message = "malformed response from the service"
		return e
	}
	e.Kind = KindUnknown
	e.Message = firstLine(scrubURLError(err).Error())
	e.Err = scrubURLError(err)
	return e
}

// fillFromResponse classifies by HTTP status and, for the statuses whose
// meaning depends on the message, by the service's own message.
func fillFromResponse(e *Error, status int, h http.Header, body []byte) {
	e.StatusCode = status
	if h != nil {
		e.RequestID = responseRequestID(h)
	}
	e.Message = serviceMessage(body)
	lower := strings.ToLower(e.Message)
	switch {
	case status == http.StatusNotFound:
		e.Kind = KindNotFound
	case status == http.StatusConflict:
		e.Kind = KindConflict
	case status == http.StatusRequestEntityTooLarge:
		// Cinder answers 413 for quota; old Nova used 413 for rate limits
		// with a Retry-After.
		if ra := retryAfter(h); ra > 0 && !strings.Contains(lower, "quota") {
			e.Kind = KindRateLimited
			e.RetryAfter = ra
		} else {
			e.Kind = KindOverQuota
		}
	case status == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		e.RetryAfter = retryAfter(h)
	case status == http.StatusUnauthorized:
		e.Kind = KindForbidden
		if e.Message == "" {
			e.Message = "authentication required"
		}
	case status == http.StatusForbidden:
		e.Kind = KindForbidden
		if isDeviceLimitMessage(lower) {
			e.Kind = KindDeviceLimit
		} else if strings.Contains(lower, "quota") {
			e.Kind = KindOverQuota
		}
	case status == http.StatusBadRequest:
		e.Kind = classifyBadRequest(lower)
	case status >= 500:
		e.Kind = KindUnavailable
		if isDeviceLimitMessage(lower) {
			e.Kind = KindDeviceLimit
		}
	default:
		e.Kind = KindUnknown
	}
}

// classifyBadRequest separates Cinder's state conflicts, which it reports
// as 400 rather than 409, from invalid input.
func classifyBadRequest(lower string) Kind {
	switch {
	case isDeviceLimitMessage(lower):
		return KindDeviceLimit
	case strings.Contains(lower, "quota") || strings.Contains(lower, "exceeded") && strings.Contains(lower, "gigabytes"):
		return KindOverQuota
	}
	for _, s := range stateConflictPhrases {
		if strings.Contains(lower, s) {
			return KindConflict
		}
	}
	return KindBadRequest
}

// stateConflictPhrases are fragments of Cinder and Nova 400 messages that
// mean "the resource is in the wrong state now", not "your input is wrong".
var stateConflictPhrases = []string{
	"status must be",
	"must be available",
	"has snapshots",
	"dependent snapshot",
	"still has",
	"still attached",
	"is attached",
	"in-use",
	"currently attached",
	"attached to",
	"invalid volume: volume status",
	"invalid snapshot: snapshot status",
	"invalid backup: backup status",
	"is busy",
	"being migrated",
	"migration status",
	"in use",
	"already attached",
	"not in a valid state",
}

func isDeviceLimitMessage(lower string) bool {
	return strings.Contains(lower, "no free disk device names") ||
		strings.Contains(lower, "maximum allowed number of disk devices") ||
		strings.Contains(lower, "no free device") ||
		strings.Contains(lower, "no more available pci slots") ||
		strings.Contains(lower, "too many disks")
}

// serviceMessage extracts the human message from an OpenStack error body:
// {"badRequest": {"message": "..."}} (Cinder, Nova), {"error":
// {"message": "..."}} (Keystone), or {"message": "..."}.
func serviceMessage(body []byte) string {
	var generic map[string]json.RawMessage
	if err := json.Unmarshal(body, &generic); err != nil {
		return ""
	}
	if m, ok := generic["message"]; ok {
		var s string
		if json.Unmarshal(m, &s) == nil {
			return trimMessage(s)
		}
	}
	for _, v := range generic {
		var inner struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v, &inner) == nil && inner.Message != "" {
			return trimMessage(inner.Message)
		}
	}
	return ""
}

func trimMessage(s string) string {
	s = firstLine(strings.TrimSpace(s))
	if len(s) > maxMessageLen {
		s = s[:maxMessageLen] + "…"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// invalidRequestURL reports a request whose URL net/url refused to parse
// (http.NewRequest's "parse" error: a control character, a bad escape),
// so that nothing was sent. Its message never includes the URL, which
// holds the raw input and the endpoint.
func invalidRequestURL(err error) (*url.Error, bool) {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Op == "parse" {
		return ue, true
	}
	return nil, false
}

// quoteIfUnprintable quotes a resource name that holds a control character
// or invalid UTF-8, so that an error message never carries it raw.
func quoteIfUnprintable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// isConnError reports a failure to reach the service at all: refused,
// reset, DNS, TLS handshake or a dropped connection. A URL that does not
// parse is not one: retrying it cannot help.
func isConnError(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	if _, bad := invalidRequestURL(err); bad {
		return false
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return true
	case errors.As(err, &oe):
		return true
	case errors.As(err, &ne):
		return true
	case errors.As(err, &ue):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "server closed idle connection")
}

// notSent reports a connection failure that happened before any byte of
// the request reached the service (dial refused, DNS), the one connection
// error after which a mutating call is safe to repeat.
func notSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED)
}

func connMessage(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "network timeout"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve host " + dnsErr.Name
	}
	return "cannot reach the service"
}

// scrubURLError drops the URL from a *url.Error: an endpoint URL can carry
// user info or query values that do not belong in an error message.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// classifyShare refines a classified Manila failure. Manila reports its
// state conflicts (InvalidShare, InvalidShareSnapshot, InvalidShareAccess:
// a share that still has snapshots, a status that is not one of the
// allowed ones) as 403 where Cinder answers 400; Zed sends the delete
// refusal with the uninterpolated text "Invalid share: %(reason)s.", so
// the "Invalid" prefix is what tells it from a policy refusal ("Policy
// doesn't allow share:delete to be performed."). A rule that exists
// already is a 400 "Share access ip:10.0.0.1 exists."; both are
// KindConflict. 413 (over quota) and 404 (itemNotFound) need nothing here.
func classifyShare(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	lower := strings.ToLower(e.Message)
	switch {
	case e.StatusCode == http.StatusForbidden && e.Kind == KindForbidden &&
		(strings.HasPrefix(lower, "invalid ") || containsAny(lower, stateConflictPhrases)):
		e.Kind = KindConflict
	case e.StatusCode == http.StatusBadRequest && e.Kind == KindBadRequest &&
		strings.Contains(lower, "access") && strings.HasSuffix(strings.TrimSuffix(lower, "."), "exists"):
		e.Kind = KindConflict
	}
	return err
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
