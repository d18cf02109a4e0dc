package diff

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// accepted lists the differences that stay, keyed by step, with the reason
// they are acceptable. tests/e2e/README.md repeats them.
var accepted = map[string]string{}

func TestDifferential(t *testing.T) {
	env := rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	emu, err := emulator.Start(emulator.Options{
		Profile: "realistic",
		Servers: []emulator.ServerSpec{
			{ID: emulator.DefaultServerID, Name: "node-1", AZ: "nova"},
			{ID: "0d6f2a4e-5b1c-4e7d-8a9f-3c2b1a0e9d87", Name: "node-2", AZ: "nova"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ec, rc, radmin := logins(ctx, t, env, emu)
	rigObs, emuObs := bothRuns(ctx, t, run,
		Target{Name: "emulator", Client: ec, Admin: ec, Server1: emulator.DefaultServerID, Server2: "0d6f2a4e-5b1c-4e7d-8a9f-3c2b1a0e9d87"},
		Target{Name: "real", Client: rc, Admin: radmin, Server1: env.Node1, Server2: env.Node2})
	report(t, rigObs, emuObs, "E2E_DIFF_REPORT")
}

// logins are the emulator's demo user and the rig's user and admin.
func logins(ctx context.Context, t *testing.T, env *rig.Env, emu *emulator.Emulator) (ec, rc, radmin *rig.Client) {
	t.Helper()
	ec, err := rig.Login(ctx, emu.URL()+"/identity/v3", "demo", "demo-secret", "demo")
	if err != nil {
		t.Fatal(err)
	}
	rc, err = env.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	radmin, err = env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ec, rc, radmin
}

// bothRuns runs scenario on the emulator's target and the rig's at once
// (the rig spends most of its time waiting on Cinder or Manila, and the
// emulator's realistic profile as long), fails t for a run that broke and returns
// the rig's observations and the emulator's.
func bothRuns[T any](ctx context.Context, t *testing.T, scenario func(context.Context, T, func(string, ...any)) ([]Obs, error),
	emuTarget, realTarget T) (rigObs, emu []Obs) {
	t.Helper()
	logf := func(format string, args ...any) { t.Logf(format, args...) }
	type result struct {
		obs []Obs
		err error
	}
	emuDone := make(chan result, 1)
	go func() {
		o, err := scenario(ctx, emuTarget, logf)
		emuDone <- result{o, err}
	}()
	rigObs, rerr := scenario(ctx, realTarget, logf)
	er := <-emuDone
	if er.err != nil {
		t.Errorf("emulator run: %v", er.err)
	}
	if rerr != nil {
		t.Errorf("real run: %v", rerr)
	}
	return rigObs, er.obs
}

func cell(o Obs) string { return strings.ReplaceAll(o.String(), "|", "\\|") }

// compare returns "" when the observations agree, "timing" when only the
// intermediate states differ in a way polling explains (same first and
// last state, one sequence inside the other), or what differs.
func compare(r, e Obs) string {
	var d []string
	if r.Step != e.Step {
		return fmt.Sprintf("different steps %q and %q", r.Step, e.Step)
	}
	if r.Status != e.Status {
		d = append(d, fmt.Sprintf("status %d vs %d", r.Status, e.Status))
	}
	if r.ErrKey != e.ErrKey {
		d = append(d, fmt.Sprintf("error key %q vs %q", r.ErrKey, e.ErrKey))
	}
	if r.Message != e.Message {
		d = append(d, "message")
	}
	if r.Extra != e.Extra {
		d = append(d, "details")
	}
	if len(d) > 0 {
		return strings.Join(d, ", ")
	}
	if slices.Equal(r.States, e.States) {
		return ""
	}
	if len(r.States) > 0 && len(e.States) > 0 && r.States[0] == e.States[0] &&
		r.States[len(r.States)-1] == e.States[len(e.States)-1] &&
		(subsequence(r.States, e.States) || subsequence(e.States, r.States)) {
		return "timing"
	}
	return "states"
}

// subsequence reports whether short appears in long in order.
func subsequence(short, long []string) bool {
	i := 0
	for _, s := range long {
		if i < len(short) && short[i] == s {
			i++
		}
	}
	return i == len(short)
}

// TestDifferentialKeystone runs the Keystone scenario (application
// credentials and trusts) on the emulator and on the rig's Keystone.
func TestDifferentialKeystone(t *testing.T) {
	env := rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	emu, err := emulator.Start(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	login := func(url, user, password, project string) *rig.Client {
		c, err := rig.Login(ctx, url, user, password, project)
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return c
	}
	eu := emu.URL() + "/identity/v3"
	logf := func(format string, args ...any) { t.Logf(format, args...) }
	eo, err := runKeystone(ctx, KeystoneTarget{Name: "emulator", Trustor: login(eu, "demo", "demo-secret", "demo"), TrustorPassword: "demo-secret",
		Trustee: login(eu, "second", "second-secret", "second"), TrusteePassword: "second-secret"}, logf)
	if err != nil {
		t.Errorf("emulator run: %v", err)
	}
	ro, err := runKeystone(ctx, KeystoneTarget{Name: "real", Trustor: login(env.AuthURL, env.User, env.Password, env.Project), TrustorPassword: env.Password,
		Trustee: login(env.AuthURL, env.AdminUser, env.AdminPassword, env.AdminProject), TrusteePassword: env.AdminPassword}, logf)
	if err != nil {
		t.Errorf("real run: %v", err)
	}
	report(t, ro, eo, "E2E_DIFF_KEYSTONE_REPORT")
}

// report compares the two runs step by step, fails the test on a
// difference that is not accepted, and writes the table to $reportEnv.
func report(t *testing.T, rigObs, emu []Obs, reportEnv string) {
	var table strings.Builder
	fmt.Fprintf(&table, "| step | real Zed | emulator | verdict |\n|---|---|---|---|\n")
	found, acc, timing := 0, 0, 0
	for i := 0; i < max(len(rigObs), len(emu)); i++ {
		var r, e Obs
		if i < len(rigObs) {
			r = rigObs[i]
		}
		if i < len(emu) {
			e = emu[i]
		}
		step := r.Step
		if step == "" {
			step = e.Step
		}
		verdict := "same"
		switch d := compare(r, e); {
		case d == "":
		case d == "timing":
			verdict = "same (polling saw different intermediate states)"
			timing++
		case accepted[step] != "":
			verdict = "accepted: " + accepted[step]
			acc++
			found++
		default:
			verdict = "DIFFERENT: " + d
			found++
			t.Errorf("step %q differs (%s):\n  real:     %s\n  emulator: %s", step, d, r, e)
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", step, cell(r), cell(e), verdict)
	}
	fmt.Fprintf(&table, "\n%d steps, %d differences (%d accepted), %d timing-only state differences\n", len(rigObs), found, acc, timing)
	t.Logf("differential result:\n%s", table.String())
	if path := os.Getenv(reportEnv); path != "" {
		_ = os.WriteFile(path, []byte(table.String()), 0o644)
	}
}
