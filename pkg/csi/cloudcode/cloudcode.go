// Package cloudcode maps the cloud layer's *openstack.Error to gRPC codes,
// the part both drivers share. Each driver's errors.go stays the one place
// that driver decides codes; it delegates the Kind mapping here and adds
// what is its own (the phrases of a capacity error state, Kata, host paths).
package cloudcode

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ForKind returns the gRPC code for a cloud error by its Kind. An error
// state is classified by the driver's capacity phrases (ForErrorState).
func ForKind(e *openstack.Error, capacityPhrases []string) codes.Code {
	switch e.Kind {
	case openstack.KindNotFound:
		return codes.NotFound
	case openstack.KindConflict:
		// By default a 409 is the cloud mid-transition (a volume attaching,
		// a share extending, an access rule being applied): retry. Handlers
		// for which a conflict needs the user mark the error so.
		return codes.Aborted
	case openstack.KindOverQuota, openstack.KindDeviceLimit:
		return codes.ResourceExhausted
	case openstack.KindRateLimited, openstack.KindUnavailable:
		return codes.Unavailable
	case openstack.KindBadRequest:
		return codes.InvalidArgument
	case openstack.KindForbidden:
		return codes.PermissionDenied
	case openstack.KindTimeout:
		// A wait reached the request deadline while the cloud was still
		// working; the sidecar retries and the retry adopts the resource.
		return codes.Aborted
	case openstack.KindErrorState:
		return ForErrorState(e.Message, capacityPhrases)
	case openstack.KindConfig:
		// Wrong credentials or endpoints: the operator must fix cloud.conf.
		return codes.FailedPrecondition
	}
	if c, ok := ForContext(e.Err); ok {
		return c
	}
	return codes.Internal
}

// ForContext returns the code of a context error inside err, keeping its
// meaning (DeadlineExceeded, Canceled).
func ForContext(err error) (codes.Code, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	}
	return codes.OK, false
}

// ForErrorState classifies a resource that went to an error status by the
// cloud's explanation: one containing a capacity phrase (no backend with
// room, a quota) is ResourceExhausted, so the provisioner may try another
// topology; anything else is a backend failure worth retrying later.
func ForErrorState(reason string, capacityPhrases []string) codes.Code {
	r := strings.ToLower(reason)
	for _, capacity := range capacityPhrases {
		if strings.Contains(r, capacity) {
			return codes.ResourceExhausted
		}
	}
	return codes.Unavailable
}

// Status wraps err into a gRPC status with the message "<what>: <err>". A
// gRPC status keeps its code unless recode is set (an error the driver
// marked to be classified again); otherwise the code is code(err).
func Status(code func(error) codes.Code, recode bool, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if st, ok := status.FromError(err); ok && !recode {
		return status.Error(st.Code(), what+": "+st.Message())
	}
	return status.Error(code(err), what+": "+err.Error())
}

// FailedState reports a resource the cloud put in an error status, with
// the cloud's own explanation when it gave one.
func FailedState(capacityPhrases []string, reason string, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if reason != "" {
		msg += ": " + reason
	}
	return status.Error(ForErrorState(reason, capacityPhrases), msg)
}
