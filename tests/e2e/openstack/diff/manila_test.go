package diff

import (
	"context"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// TestDifferentialManila runs the Manila scenario on the emulator (its
// realistic profile) and on the rig's Manila Zed (tools/openstack-rig/manila,
// MANILA_NFS=1: both share types), as the rig's member user.
func TestDifferentialManila(t *testing.T) {
	env := rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rc, err := env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rm, ok, err := NewManilaClient(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("the rig has no Manila in its catalog (run tools/openstack-rig/manila/manila-up.sh with MANILA_NFS=1)")
	}
	radmin, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.Start(emulator.Options{Profile: "realistic"})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ec, err := rig.Login(ctx, emu.URL()+"/identity/v3", "demo", "demo-secret", "demo")
	if err != nil {
		t.Fatal(err)
	}
	em, ok, err := NewManilaClient(ctx, ec)
	if err != nil || !ok {
		t.Fatalf("emulator catalog without sharev2: %v", err)
	}
	logf := func(format string, args ...any) { t.Logf(format, args...) }

	type result struct {
		obs []Obs
		err error
	}
	emuDone := make(chan result, 1)
	go func() {
		o, err := runManila(ctx, ManilaTarget{Name: "emulator", M: em, OtherProjectID: emu.ProjectID("second")}, logf)
		emuDone <- result{o, err}
	}()
	real, rerr := runManila(ctx, ManilaTarget{Name: "real", M: rm, OtherProjectID: radmin.ProjectID}, logf)
	er := <-emuDone
	if er.err != nil {
		t.Errorf("emulator run: %v", er.err)
	}
	if rerr != nil {
		t.Errorf("real run: %v", rerr)
	}
	report(t, real, er.obs, "E2E_DIFF_MANILA_REPORT")
}
