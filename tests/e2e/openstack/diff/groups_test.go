package diff

import (
	"context"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// TestDifferentialGroups runs the group scenario on the emulator and on
// the rig and compares them step by step.
func TestDifferentialGroups(t *testing.T) {
	env := rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	emu, err := emulator.Start(emulator.Options{Profile: "realistic"})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ec, err := rig.Login(ctx, emu.URL()+"/identity/v3", "demo", "demo-secret", "demo")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	radmin, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logf := func(format string, args ...any) { t.Logf(format, args...) }
	type result struct {
		obs []Obs
		err error
	}
	emuDone := make(chan result, 1)
	go func() {
		o, err := runGroups(ctx, Target{Name: "emulator", Client: ec, Admin: ec}, logf)
		emuDone <- result{o, err}
	}()
	real, rerr := runGroups(ctx, Target{Name: "real", Client: rc, Admin: radmin}, logf)
	er := <-emuDone
	if er.err != nil {
		t.Errorf("emulator run: %v", er.err)
	}
	if rerr != nil {
		t.Errorf("real run: %v", rerr)
	}
	if groups, gsnaps := emu.GroupCounts(); groups != 0 || gsnaps != 0 {
		t.Errorf("the emulator run left %d groups and %d group snapshots", groups, gsnaps)
	}
	report(t, real, er.obs, "E2E_DIFF_GROUPS_REPORT")
}
