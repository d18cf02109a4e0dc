package cinder

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cloudcode"
	"github.com/cinder-csi/cinder-csi/pkg/hostpath"
	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// This file is the one place that decides gRPC codes for failures we did
// not create ourselves. The sidecars branch on codes (docs/design.md,
// "Error mapping"): Aborted, Unavailable, DeadlineExceeded and Canceled
// mean "still in progress, retry"; ResourceExhausted makes the scheduler
// look elsewhere; InvalidArgument, NotFound and OutOfRange are final.

// CodeForError returns the gRPC code for err. A gRPC status passes through;
// cloud and Kata errors map by Kind; context errors keep their meaning.
// Only an error we do not understand becomes Internal.
func CodeForError(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var ce *conflictNeedsUser
	if errors.As(err, &ce) && openstack.KindOf(ce.err) == openstack.KindConflict {
		return codes.FailedPrecondition
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	if params.IsInvalid(err) {
		return codes.InvalidArgument
	}
	var he *hostpath.Error
	if errors.As(err, &he) {
		// A node path, mount flag or id refused before anything was done.
		return codes.InvalidArgument
	}
	var oe *openstack.Error
	if errors.As(err, &oe) {
		// By default a 409 is Cinder or Nova mid-transition (volume attaching,
		// instance task_state locked): Aborted. Handlers for which a conflict
		// needs the user wrap the error with needsUser.
		return cloudcode.ForKind(oe, capacityPhrases)
	}
	if k, ok := kataerr.KindOf(err); ok {
		return codeForKataKind(k)
	}
	if c, ok := cloudcode.ForContext(err); ok {
		return c
	}
	return codes.Internal
}

// codeForKataKind maps pkg/kata's failures (kataerr.Kind).
func codeForKataKind(k kataerr.Kind) codes.Code {
	switch k {
	case kataerr.Invalid:
		return codes.InvalidArgument
	case kataerr.Precondition:
		return codes.FailedPrecondition
	case kataerr.Unavailable:
		// The Kubernetes API or the node opt-in could not be read; a
		// publish must not fall back to a host mount, so it is retried.
		return codes.Unavailable
	case kataerr.NotFound:
		return codes.NotFound
	case kataerr.AlreadyExists:
		return codes.AlreadyExists
	}
	return codes.Internal
}

// kataStatus maps an error of the KataPublisher: pkg/kata's typed errors by
// their kind, a gRPC status as it is, and anything else (another
// implementation of the interface) to Internal. The message is
// "<what>: <err>".
func kataStatus(err error, format string, args ...any) error {
	return kataStatusOr(codes.Internal, err, format, args...)
}

// kataLookupStatus is kataStatus for Wants, whose untyped failures are
// lookups (the Kubernetes API) worth retrying: Unavailable, never a silent
// host mount.
func kataLookupStatus(err error, format string, args ...any) error {
	return kataStatusOr(codes.Unavailable, err, format, args...)
}

func kataStatusOr(fallback codes.Code, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if _, typed := kataerr.KindOf(err); typed {
		return StatusFromError(err, format, args...)
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(fallback, fmt.Sprintf(format, args...)+": "+err.Error())
}

// capacityPhrases are the words of Cinder's explanation of a resource
// that went to an error status for want of room: no backend with room is
// capacity (so the provisioner may try another topology), anything else is
// a backend failure worth retrying later.
var capacityPhrases = []string{"no valid host", "no storage could be allocated", "available weighted backend", "quota", "not enough space", "insufficient"}

// StatusFromError wraps err into a gRPC status with CodeForError's code and
// the message "<what>: <err>". The node server may use it too.
func StatusFromError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return cloudcode.Status(CodeForError, isConflictNeedsUser(err), err, format, args...)
}

// conflictNeedsUser marks a cloud conflict that retrying will not fix
// (a volume with dependent snapshots, a snapshot with dependent volumes).
type conflictNeedsUser struct{ err error }

func (c *conflictNeedsUser) Error() string { return c.err.Error() }
func (c *conflictNeedsUser) Unwrap() error { return c.err }

// needsUser returns err marked so that a KindConflict maps to
// FailedPrecondition instead of Aborted. Other kinds are unaffected.
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

// Errors the handlers decide themselves. Keeping them here means a reader
// sees every code the driver can answer in one file.

func errInvalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// errHostPath answers a node path, mount flag or id that pkg/hostpath
// refused; its message names the field, the value and the kubelet root.
func errHostPath(err error) error {
	return status.Error(CodeForError(err), err.Error())
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

// errInProgress is for "Cinder is still working on it; call again".
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

// errFailedState reports a resource Cinder put in an error status, with
// Cinder's own explanation when it gave one.
func errFailedState(reason string, format string, args ...any) error {
	return cloudcode.FailedState(capacityPhrases, reason, format, args...)
}

// errTooSlow reports work Cinder is still doing past the budget the class
// allows. DeadlineExceeded keeps the sidecar retrying, and the event tells
// the user where to look.
func errTooSlow(format string, args ...any) error {
	return status.Errorf(codes.DeadlineExceeded, format, args...)
}
