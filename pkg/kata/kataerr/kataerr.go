// Package kataerr holds the typed errors pkg/kata returns: a Kind saying
// what the caller can do about the failure, and a message saying what was
// being done. pkg/kata knows nothing of gRPC codes; the CSI layer maps the
// Kind in one place (pkg/csi/cinder/errors.go). The type lives apart from
// pkg/kata so that the mapping needs no import of pkg/kata, whose tests
// drive the real node server.
package kataerr

import (
	"errors"
	"fmt"
)

// Kind classifies a failure by what the caller can do about it.
type Kind int

const (
	// Internal means a host operation failed in a way we do not understand
	// (mount, mkdir, reading or writing a record).
	Internal Kind = iota
	// Invalid means the request itself is wrong (a path too long to record, a
	// bad StorageClass opt-out value); retrying it cannot help.
	Invalid
	// Precondition means the node or the volume must change first (another
	// publication, another mount of the device, a capability Kata cannot
	// serve).
	Precondition
	// Unavailable means a lookup that may pass later failed (the Kubernetes
	// API, the node opt-in).
	Unavailable
	// NotFound means no Kata direct volume at that path, or not this volume.
	NotFound
	// AlreadyExists means the target holds another volume's record.
	AlreadyExists
)

var kindNames = map[Kind]string{
	Internal: "internal", Invalid: "invalid", Precondition: "precondition",
	Unavailable: "unavailable", NotFound: "not found", AlreadyExists: "already exists",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failure of pkg/kata.
type Error struct {
	Kind Kind
	// Msg is the whole message, cause included.
	Msg string
	// Err is the cause wrapped with %w, if any.
	Err error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind with fmt.Errorf's message; a %w verb
// keeps the cause for errors.Is and errors.As.
func Errorf(kind Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// KindOf returns the Kind of the first *Error in err's chain.
func KindOf(err error) (Kind, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind, true
	}
	return Internal, false
}
