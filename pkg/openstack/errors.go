package openstack

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies a cloud failure by what the caller should do about it.
type Kind int

// The kinds; KindOf maps an error to one.
const (
	KindUnknown     Kind = iota // not classified
	KindNotFound                // 404: the resource does not exist
	KindConflict                // 409, or 400 for a state conflict (attached, has snapshots)
	KindOverQuota               // 413, or a quota message
	KindRateLimited             // 429: RetryAfter says how long
	KindUnavailable             // 5xx, connection refused, reset
	KindBadRequest              // 400 for invalid input
	KindForbidden               // 401 after re-auth, 403
	KindTimeout                 // a wait reached the caller's deadline
	KindErrorState              // the resource went to an error status
	KindDeviceLimit             // Nova refused: the server has no free device slot
	KindConfig                  // configuration or credentials are wrong
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindOverQuota:
		return "over quota"
	case KindRateLimited:
		return "rate limited"
	case KindUnavailable:
		return "unavailable"
	case KindBadRequest:
		return "bad request"
	case KindForbidden:
		return "forbidden"
	case KindTimeout:
		return "timeout"
	case KindErrorState:
		return "error state"
	case KindDeviceLimit:
		return "device limit"
	case KindConfig:
		return "config"
	}
	return "unknown"
}

// Error is the one error type the cloud layer returns.
type Error struct {
	Kind       Kind
	Op         string // e.g. "volume_create"
	Resource   string // resource id or name, when known
	StatusCode int    // HTTP status, 0 when none
	RequestID  string // X-Openstack-Request-Id, for following into service logs
	RetryAfter time.Duration
	// Message is the service's own explanation (never a URL with credentials,
	// never a token).
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Resource != "" {
		msg += " " + e.Resource
	}
	msg += ": " + e.Kind.String()
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " [request " + e.RequestID + "]"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or KindUnknown when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// IsNotFound reports whether err means the resource does not exist.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }
