// Package paramkit holds what both drivers' params packages share: the
// invalid-parameter error the CSI layer answers InvalidArgument for, and
// the deterministic key order parsing walks in (so the first error
// reported for a class is always the same one). The keys each driver reads
// stay in its own params package.
package paramkit

import (
	"errors"
	"fmt"
	"sort"
)

// Longest key and value quoted in an error message: a class is user
// input, and a megabyte value must not become a megabyte event.
const (
	maxKeyLengthInMessages   = 64
	maxValueLengthInMessages = 128
)

// Error is an invalid parameter. The CSI layer answers InvalidArgument.
type Error struct {
	Key    string
	Value  string
	Reason string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("parameter %q: %s", clip(e.Key, maxKeyLengthInMessages), e.Reason)
	}
	return fmt.Sprintf("parameter %q=%q: %s", clip(e.Key, maxKeyLengthInMessages), clip(e.Value, maxValueLengthInMessages), e.Reason)
}

// IsInvalid reports whether err is (or wraps) a parameter *Error.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// SortedKeys returns m's keys in order.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
