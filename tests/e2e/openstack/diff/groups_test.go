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
	ec, rc, radmin := logins(ctx, t, env, emu)
	rigObs, emuObs := bothRuns(ctx, t, runGroups,
		Target{Name: "emulator", Client: ec, Admin: ec},
		Target{Name: "real", Client: rc, Admin: radmin})
	if groups, gsnaps := emu.GroupCounts(); groups != 0 || gsnaps != 0 {
		t.Errorf("the emulator run left %d groups and %d group snapshots", groups, gsnaps)
	}
	report(t, rigObs, emuObs, "E2E_DIFF_GROUPS_REPORT")
}
