package fsopts

import (
	"slices"
	"testing"
)

func TestFamily(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"ext4", "ext3", true},
		{"ext2", "ext4", true},
		{"xfs", "xfs", true},
		{"xfs", "ext4", false},
		{"btrfs", "ext4", false},
		{"", "ext4", false},
	} {
		if got := SameFamily(c.a, c.b); got != c.same {
			t.Errorf("SameFamily(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
	if !IsExt("ext3") || IsExt("xfs") {
		t.Error("IsExt is wrong for ext3 or xfs")
	}
}

func TestWithNoUUIDOnlyForXFSAndOnce(t *testing.T) {
	if got := WithNoUUID("xfs", []string{"noatime"}); !slices.Equal(got, []string{"noatime", "nouuid"}) {
		t.Errorf("xfs: %q", got)
	}
	if got := WithNoUUID("xfs", []string{"nouuid", "noatime"}); !slices.Equal(got, []string{"nouuid", "noatime"}) {
		t.Errorf("xfs with nouuid already: %q", got)
	}
	if got := WithNoUUID("ext4", []string{"noatime"}); !slices.Equal(got, []string{"noatime"}) {
		t.Errorf("ext4: %q", got)
	}
	if got := WithNoUUID("xfs", nil); !slices.Equal(got, []string{"nouuid"}) {
		t.Errorf("xfs without options: %q", got)
	}
}
