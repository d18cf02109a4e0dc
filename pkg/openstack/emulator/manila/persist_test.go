package manila_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestSharesAccessRulesAndDataSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	e, err := emulator.Start(emulator.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "CEPHFS", Size: 1, Name: "kept"})
	r, err := shares.GrantAccess(ctx, c, sh.ID, shares.GrantAccessOpts{AccessType: "cephx", AccessTo: "kept", AccessLevel: "rw"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	active, _ := waitRule(t, c, r.ID, is("active"))
	sdir, _ := e.ShareDir(sh.ID)
	if err := os.WriteFile(filepath.Join(sdir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := start(t, emulator.Options{StateDir: dir})
	c2 := client(t, e2, "2.73")
	got, err := shares.Get(ctx, c2, sh.ID).Extract()
	if err != nil || got.Name != "kept" || got.Status != "available" {
		t.Fatalf("share after restart %+v %v", got, err)
	}
	rule, _ := waitRule(t, c2, r.ID, is("active"))
	if rule.AccessKey != active.AccessKey {
		t.Errorf("cephx key changed across the restart")
	}
	sdir2, _ := e2.ShareDir(sh.ID)
	if b, err := os.ReadFile(filepath.Join(sdir2, "f")); err != nil || string(b) != "data" {
		t.Errorf("share data after restart %q %v", b, err)
	}
}
