package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestManilaDemo runs `csi-demo --driver manila` as `make demo` does, on
// the emulator's "fast" profile: every controller step passes, the node
// step says why it is skipped, and Manila holds nothing afterwards.
func TestManilaDemo(t *testing.T) {
	dir := buildBinaries(t)
	var buf bytes.Buffer
	rc := run([]string{"--driver", "manila", "--bin-dir", dir, "--profile", "fast"}, &buf)
	out := buf.String()
	t.Log("\n" + out)
	if rc != 0 {
		t.Fatalf("csi-demo --driver manila exited %d", rc)
	}
	for i := 1; i <= manilaSteps; i++ {
		if !strings.Contains(out, "["+itoa(i)+"/"+itoa(manilaSteps)+"] ") {
			t.Errorf("step %d not printed", i)
		}
	}
	for _, want := range []string{"Manila holds no share and no snapshot", "no kernel NFS client", "csi-demo: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "FAILED") || strings.Count(out, "skipped  no kernel NFS client") != 1 {
		t.Errorf("want every step ok but the one node step")
	}
}
