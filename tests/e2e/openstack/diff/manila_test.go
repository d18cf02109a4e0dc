package diff

import (
	"context"
	"fmt"
	"os"
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
	// hack/e2e-openstack.sh sets MANILA_UP=0 when Manila is registered
	// but did not come up, and says why.
	if os.Getenv("MANILA_UP") == "0" {
		t.Skip("the rig's Manila is not up (hack/e2e-openstack.sh printed the reason)")
	}
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
	ram, ok, err := NewManilaClient(ctx, radmin)
	if err != nil || !ok {
		t.Fatalf("the admin's catalog has no sharev2: %v", err)
	}
	et := ManilaTarget{Name: "emulator", M: em, OtherProjectID: emu.ProjectID("second")}
	et.SetQuota, et.ForceDelete = emulatorAdmin(emu)
	rt := ManilaTarget{Name: "real", M: rm, OtherProjectID: radmin.ProjectID}
	rt.SetQuota, rt.ForceDelete = rigAdmin(ram, rc.ProjectID)
	rigObs, eobs := bothRuns(ctx, t, runManila, et, rt)
	rigObs2, eobs2 := bothRuns(ctx, t, runManilaEdges, et, rt)
	report(t, append(rigObs, rigObs2...), append(eobs, eobs2...), "E2E_DIFF_MANILA_REPORT")
}

type (
	quotaSetter func(ctx context.Context, q map[string]int) error
	forceDelete func(ctx context.Context, shareID string) error
)

// rigAdmin is what an admin does for the scenario on the rig: set the
// member's Manila quota (nil deletes it: the defaults) and force-delete a
// share.
func rigAdmin(admin *ManilaClient, projectID string) (quotaSetter, forceDelete) {
	setQuota := func(ctx context.Context, q map[string]int) error {
		var r *rig.Response
		var err error
		if q == nil {
			r, err = admin.Do(ctx, "DELETE", "/quota-sets/"+projectID, manilaMV, nil)
		} else {
			r, err = admin.Do(ctx, "PUT", "/quota-sets/"+projectID, manilaMV, map[string]any{"quota_set": q})
		}
		if err == nil && r.Status >= 300 {
			err = fmt.Errorf("quota set %v: %d %s", q, r.Status, r.Body)
		}
		return err
	}
	force := func(ctx context.Context, id string) error {
		_, err := admin.Do(ctx, "POST", "/shares/"+id+"/action", manilaMV, map[string]any{"force_delete": nil})
		return err
	}
	return setQuota, force
}

// emulatorAdmin is rigAdmin through the emulator's Go hooks.
func emulatorAdmin(emu *emulator.Emulator) (quotaSetter, forceDelete) {
	pid := emu.ProjectID("demo")
	setQuota := func(_ context.Context, q map[string]int) error {
		if q == nil {
			emu.Manila().ResetQuota(pid)
			return nil
		}
		cur := emu.Manila().QuotaOf(pid)
		for k, v := range q {
			switch k {
			case "shares":
				cur.Shares = v
			case "gigabytes":
				cur.Gigabytes = v
			case "snapshots":
				cur.Snapshots = v
			}
		}
		emu.Manila().SetQuota(pid, cur)
		return nil
	}
	force := func(_ context.Context, id string) error { emu.Manila().ForceDeleteShare(id); return nil }
	return setQuota, force
}
