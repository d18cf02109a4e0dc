package manilanode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is the one place the Manila node service decides gRPC codes.
// The node makes no OpenStack calls, so there are no cloud kinds to map:
// what fails is input (InvalidArgument), a path or mount that is not this
// volume's (FailedPrecondition or NotFound), a mount helper or a partner
// driver that is not there (Unavailable), or the host (Internal, with the
// host's own message).

// codeForError returns the code of err: a gRPC status passes through,
// context errors keep their meaning, anything else is Internal.
func codeForError(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, os.ErrNotExist):
		return codes.NotFound
	case errors.Is(err, errMountHelperMissing):
		return codes.Unavailable
	}
	return codes.Internal
}

// statusFromError wraps err into a status with codeForError's code and the
// message "<what>: <err>".
func statusFromError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if st, ok := status.FromError(err); ok {
		return status.Error(st.Code(), what+": "+st.Message())
	}
	return status.Error(codeForError(err), what+": "+err.Error())
}

// errMountHelperMissing marks a mount helper (mount.nfs4, ceph-fuse) that
// is not installed on the node: the operator must fix the image, and a
// retry after that succeeds, so it is Unavailable rather than Internal.
var errMountHelperMissing = errors.New("mount helper not installed")

func errInvalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func errNotFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

func errPrecondition(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, args...)
}

// errUnavailable is for a partner driver or helper that may come back.
func errUnavailable(format string, args ...any) error {
	return status.Errorf(codes.Unavailable, format, args...)
}

// errBusy answers a request whose volume another request is working on.
func errBusy(volumeID string) error {
	return status.Errorf(codes.Aborted, "an operation on volume %q is already in progress; retry later", volumeID)
}

// mountFailure classifies a failed share mount by the helper's message: a
// server that refuses this node is FailedPrecondition (the access rule is
// missing or not active: the controller's business), a server that cannot
// be reached is Unavailable, a missing helper is Unavailable.
func mountFailure(err error, format string, args ...any) error {
	msg := strings.ToLower(err.Error())
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, errMountHelperMissing):
		return status.Error(codes.Unavailable, what+": "+err.Error())
	case containsAny(msg, "access denied", "permission denied", "operation not permitted", "authentication error", "error -13", "error 13"),
		// util-linux's mount(8) for EACCES: it retries read-only, then
		// says "cannot mount <source> read-only."
		strings.Contains(msg, "cannot mount") && strings.Contains(msg, "read-only."):
		return status.Error(codes.FailedPrecondition, what+": the server refused this node (is the access rule active?): "+err.Error())
	case containsAny(msg, "timed out", "connection refused", "no route to host", "network is unreachable", "host is down", "error -110", "error 110"):
		return status.Error(codes.Unavailable, what+": "+err.Error())
	case containsAny(msg, "no such file or directory", "does not exist"):
		return status.Error(codes.NotFound, what+": "+err.Error())
	}
	return statusFromError(err, "%s", what)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func errAlreadyExists(format string, args ...any) error {
	return status.Errorf(codes.AlreadyExists, format, args...)
}
