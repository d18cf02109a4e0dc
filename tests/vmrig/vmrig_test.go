package vmrig_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// TestGuestLifecycle boots one guest and runs every call of the package
// once: exec, spawn, share, attach (serial cut to 20), resize seen by the
// guest, detach, the caller's own QMP monitor.
func TestGuestLifecycle(t *testing.T) {
	r := vmrig.RequireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := r.Start(t, "vmt", vmrig.Options{Share: share, QMP: true})
	if out, err := g.Sh(ctx, "cat /share/hello"); err != nil || out != "hi\n" {
		t.Fatalf("share: %q %v", out, err)
	}
	if _, err := g.Exec(ctx, "false"); err == nil {
		t.Fatal("a failing command returned no error")
	}
	if _, err := g.Spawn(ctx, "/tmp/spawn.log", "sh", "-c", "echo spawned > /tmp/spawned"); err != nil {
		t.Fatal(err)
	}
	if err := g.WaitPath(ctx, "/tmp/spawned", false); err != nil {
		t.Fatal(err)
	}

	serial := "0123456789abcdef0123-4567-89ab-cdef01234567"
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := os.Truncate(createFile(t, img), 64<<20); err != nil {
		t.Fatal(err)
	}
	a, err := g.Attach(ctx, serial, img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("attach: %+v", a)
	if !strings.HasSuffix(a.ByID, "virtio-"+serial[:20]) {
		t.Fatalf("by-id %s", a.ByID)
	}
	if err := g.Resize(ctx, serial, "128M"); err != nil {
		t.Fatal(err)
	}
	out, err := g.Sh(ctx, "blockdev --getsize64 "+a.ByID)
	if err != nil || strings.TrimSpace(out) != "134217728" {
		t.Fatalf("size after resize %q %v", out, err)
	}
	d, err := g.Detach(ctx, serial)
	if err != nil || !d.LinkGone {
		t.Fatalf("detach %+v %v", d, err)
	}
	if _, err := os.Stat(g.QMPSocket()); err != nil {
		t.Fatalf("own QMP monitor: %v", err)
	}
	if _, err := g.QMP(ctx, "query-status", nil); err != nil {
		t.Fatal(err)
	}
}

func createFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return path
}
