package kataerr

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorfKeepsKindMessageAndCause(t *testing.T) {
	err := Errorf(Precondition, "unmounting staging %s: %w", "/s", fs.ErrPermission)
	if got, ok := KindOf(fmt.Errorf("outer: %w", err)); !ok || got != Precondition {
		t.Errorf("KindOf = %v, %v; want Precondition through a wrapper", got, ok)
	}
	if err.Error() != "unmounting staging /s: permission denied" {
		t.Errorf("message = %q", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("the %w cause is lost")
	}
	if _, ok := KindOf(errors.New("plain")); ok {
		t.Error("a plain error has no Kind")
	}
	if Unavailable.String() != "unavailable" || Kind(99).String() != "Kind(99)" {
		t.Errorf("Kind names: %s %s", Unavailable, Kind(99))
	}
}
