package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// buildBinaries builds the emulator, the plugin and the demo itself into a
// directory every user can read (the non-root run needs that).
func buildBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries and runs the demo; skipped with -short")
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "csi-demo-test-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../openstack-emulator", "../cinder-csi-plugin", "../manila-csi-plugin", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

var socketRE = regexp.MustCompile(`unix://(\S+)/csi\.sock`)

// checkRun asserts a demo run that exited 0, printed every step with
// their results and the summary, and left its temp dir behind it.
func checkRun(t *testing.T, out string, wantSkipped int) {
	t.Helper()
	for i := 1; i <= totalSteps; i++ {
		if !strings.Contains(out, "["+itoa(i)+"/"+itoa(totalSteps)+"] ") {
			t.Errorf("step %d not printed", i)
		}
	}
	if n := strings.Count(out, "      skipped  ") + strings.Count(out, "skipped: needs root"); n < wantSkipped {
		t.Errorf("%d skipped node steps reported, want at least %d", n, wantSkipped)
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("a step failed")
	}
	for _, want := range []string{"the cloud holds nothing", " total ", "API calls", "csi-demo: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := socketRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no socket path in the output")
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left behind (stat: %v)", m[1], err)
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(data), m[1]) {
		t.Errorf("mounts left under %s", m[1])
	}
	if out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "BACK-FILE").Output(); err == nil && strings.Contains(string(out), m[1]) {
		t.Errorf("loop devices left over files under %s:\n%s", m[1], out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestDemo runs the demo as `make demo` does, with the emulator's "fast"
// profile so that it costs seconds; as root it stages, writes, expands and
// reads back on real loop devices.
func TestDemo(t *testing.T) {
	dir := buildBinaries(t)
	var buf bytes.Buffer
	rc := run([]string{"--bin-dir", dir, "--profile", "fast"}, &buf)
	t.Log("\n" + buf.String())
	if rc != 0 {
		t.Fatalf("csi-demo exited %d", rc)
	}
	wantSkipped := 0
	if os.Geteuid() != 0 {
		wantSkipped = 2
	} else if !strings.Contains(buf.String(), "read back intact") {
		t.Error("as root the file must be read back from the restored volume")
	}
	checkRun(t, buf.String(), wantSkipped)

	t.Run("without root the controller steps run and the demo exits 0", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("already ran without root")
		}
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("needs setpriv to drop root")
		}
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			filepath.Join(dir, "csi-demo"), "--profile", "fast")
		cmd.Env = append(os.Environ(), "HOME=/tmp")
		out, err := cmd.CombinedOutput()
		t.Log("\n" + string(out))
		if err != nil {
			t.Fatalf("csi-demo as uid 65534: %v", err)
		}
		if !strings.Contains(string(out), "not root (uid 65534)") {
			t.Error("the demo did not say why it skipped the node steps")
		}
		checkRun(t, string(out), 2)
	})
}
