package peerpod

import (
	"strings"
	"testing"
)

// TestInstanceNameIsCAAs: podvm-<sanitized pod, cut>-<sandbox[:8]>, at most
// 63 characters, and the pattern matches it and nothing of another pod.
func TestInstanceNameIsCAAs(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, tc := range []struct{ pod, sandbox, want string }{
		{"web-0", "5e1f00aa77c34d21", "podvm-web-0-5e1f00aa"},
		{"My_App.v2", "ABCDEF0123", "podvm-my-app-v2-abcdef01"},
		{long, "0123456789", "podvm-" + long[:48] + "-01234567"},
	} {
		got := InstanceName(tc.pod, tc.sandbox)
		if got != tc.want || len(got) > 63 {
			t.Errorf("InstanceName(%q, %q) = %q (%d), want %q", tc.pod, tc.sandbox, got, len(got), tc.want)
		}
		if !InstanceNamePattern(tc.pod).MatchString(got) {
			t.Errorf("pattern of %q does not match %q", tc.pod, got)
		}
	}
	if InstanceNamePattern("web").MatchString(InstanceName("web-0", "5e1f00aa77c34d21")) {
		t.Error("pod web's pattern matches pod web-0's VM")
	}
}
