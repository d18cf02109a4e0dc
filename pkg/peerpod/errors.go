package peerpod

import (
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
)

// The one place peer-pod failures become gRPC codes. Cloud errors go
// through the Cinder driver's mapping (cinder.StatusFromError); errors that
// already carry a status (from the Cinder controller) pass unchanged.

// errInvalid: the request is wrong; nothing was changed.
func errInvalid(format string, args ...any) error {
	return grpcstatus.Errorf(codes.InvalidArgument, format, args...)
}

// errPrecondition: a conflict the user must resolve (another pod VM holds
// the volume, the pod VM went to ERROR).
func errPrecondition(format string, args ...any) error {
	return grpcstatus.Errorf(codes.FailedPrecondition, format, args...)
}

// errWaiting: the cloud (or cloud-api-adaptor) is still working; a retry
// continues.
func errWaiting(format string, args ...any) error {
	return grpcstatus.Errorf(codes.Unavailable, format, args...)
}

// errAborted: the operation was overtaken (the pod VM was deleted during
// the attach); a retry starts over.
func errAborted(format string, args ...any) error {
	return grpcstatus.Errorf(codes.Aborted, format, args...)
}

func errUnimplemented(format string, args ...any) error {
	return grpcstatus.Errorf(codes.Unimplemented, format, args...)
}

// fromCloud maps a cloud-layer error, keeping a status that is already one.
func fromCloud(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if _, ok := grpcstatus.FromError(err); ok {
		return err
	}
	return cinder.StatusFromError(err, format, args...)
}

// Code returns the gRPC code of an error from this package.
func Code(err error) codes.Code { return grpcstatus.Code(err) }

// status codes used by the node service beyond the helpers above.
const (
	alreadyExists = codes.AlreadyExists
	internal      = codes.Internal
)

func status(c codes.Code, format string, args ...any) error {
	return grpcstatus.Errorf(c, format, args...)
}
