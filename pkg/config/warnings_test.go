package config

import (
	"slices"
	"testing"
)

// The Cinder plugin with both services reads cloud.conf twice at startup;
// its unknown-key warning must be logged once.
func TestWarningsAreLoggedOncePerProcess(t *testing.T) {
	l := &warningLog{seen: map[string]bool{}}
	first := []string{"cloud.conf: unknown key bs-flavour", "cloud.conf: unknown section LoadBalancer"}
	if got := l.fresh(first); !slices.Equal(got, first) {
		t.Fatalf("first read: %q", got)
	}
	if got := l.fresh(first); len(got) != 0 {
		t.Fatalf("second read of the same file logged again: %q", got)
	}
	// A reload that brings a new unknown key logs only that one.
	next := append(slices.Clone(first), "cloud.conf: unknown key lb-version")
	if got := l.fresh(next); !slices.Equal(got, next[2:]) {
		t.Fatalf("reload: %q", got)
	}
}
