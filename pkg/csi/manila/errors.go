package manila

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cloudcode"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// This file is the one place that decides the Manila controller's gRPC
// codes. The sidecars branch on codes: Aborted, Unavailable,
// DeadlineExceeded and Canceled mean "still in progress, retry";
// ResourceExhausted makes the scheduler look elsewhere; InvalidArgument,
// NotFound and OutOfRange are final.

// CodeForError returns the gRPC code for err. A gRPC status passes
// through; cloud errors map by Kind; context errors keep their meaning.
// Only an error we do not understand becomes Internal.
func CodeForError(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var ce *conflictNeedsUser
	if errors.As(err, &ce) {
		switch openstack.KindOf(ce.err) {
		case openstack.KindConflict, openstack.KindForbidden, openstack.KindBadRequest:
			return codes.FailedPrecondition
		}
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	if params.IsInvalid(err) {
		return codes.InvalidArgument
	}
	var oe *openstack.Error
	if errors.As(err, &oe) {
		// A share mid-transition (extending, an access rule being applied) is
		// Aborted; handlers for which a conflict needs the user wrap the error
		// with needsUser.
		return cloudcode.ForKind(oe, capacityPhrases)
	}
	if c, ok := cloudcode.ForContext(err); ok {
		return c
	}
	return codes.Internal
}

// capacityPhrases are the words of Manila's explanation (/messages) of a
// share that went to error for want of room: no backend with room or a
// quota is capacity, so the provisioner may try another topology; anything
// else is a backend failure worth retrying later.
var capacityPhrases = []string{"no valid host", "no storage could be allocated", "weighted", "quota", "not enough space", "insufficient", "capacity", "exceeded"}

// StatusFromError wraps err into a gRPC status with CodeForError's code
// and the message "<what>: <err>".
func StatusFromError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return cloudcode.Status(CodeForError, isConflictNeedsUser(err), err, format, args...)
}

// conflictNeedsUser marks a cloud refusal that retrying will not fix (a
// share with snapshots: Manila answers 403 or 409 depending on the path).
type conflictNeedsUser struct{ err error }

func (c *conflictNeedsUser) Error() string { return c.err.Error() }
func (c *conflictNeedsUser) Unwrap() error { return c.err }

func needsUser(err error) error {
	if err == nil {
		return nil
	}
	return &conflictNeedsUser{err: err}
}

func isConflictNeedsUser(err error) bool {
	var ce *conflictNeedsUser
	return errors.As(err, &ce)
}

// Errors the handlers decide themselves, all here so a reader sees every
// code the driver can answer in one file.

func errInvalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func errNotFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

func errAlreadyExists(format string, args ...any) error {
	return status.Errorf(codes.AlreadyExists, format, args...)
}

func errPrecondition(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, args...)
}

// errInProgress is for "Manila is still working on it; call again".
func errInProgress(format string, args ...any) error {
	return status.Errorf(codes.Aborted, format, args...)
}

// errNotReady is for a source that exists but cannot be used yet.
func errNotReady(format string, args ...any) error {
	return status.Errorf(codes.Unavailable, format, args...)
}

func errOutOfRange(format string, args ...any) error {
	return status.Errorf(codes.OutOfRange, format, args...)
}

// errBusy answers a request whose key another request is working on.
func errBusy(what, key string) error {
	return status.Errorf(codes.Aborted, "an operation on %s %q is already in progress; retry later", what, key)
}

// errFailedState reports a resource Manila put in an error status, with
// Manila's own explanation when it gave one.
func errFailedState(reason string, format string, args ...any) error {
	return cloudcode.FailedState(capacityPhrases, reason, format, args...)
}

// errorStateReason returns the message of a KindErrorState cloud error.
func errorStateReason(err error) (string, bool) {
	var oe *openstack.Error
	if errors.As(err, &oe) && oe.Kind == openstack.KindErrorState {
		return oe.Message, true
	}
	return "", false
}
