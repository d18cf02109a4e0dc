package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/internal/bench"
)

// The storm of issue 20, ours beside cloud-provider-openstack's plugin,
// with and without faults.

var faultMixes = []struct{ name, desc string }{
	{"none", "no faults"},
	{"mixed", "5 % 500/503 + 5 % 429 on every call"},
	{"volume GET", "5 % 500/503 + 5 % 429 on GET volumes/{id} only"},
}

// callsResult holds one target's storms by fault mix, and the machine's
// load when each started.
type callsResult struct {
	target string
	runs   map[string][]*bench.StormResult
	load   map[string][]float64
}

func runCalls(ctx context.Context, plugin, reference string, runs int) ([]*callsResult, string) {
	targets := []struct {
		name, bin string
		ref       bool
	}{{"ours", plugin, false}}
	skip := ""
	if reference == "" {
		skip = "no reference binary given (-reference); build cloud-provider-openstack's cinder-csi-plugin v1.36.0 from its module to compare"
	} else if _, err := os.Stat(reference); err != nil {
		skip = fmt.Sprintf("reference binary %s: %v", reference, err)
	} else {
		targets = append(targets, struct {
			name, bin string
			ref       bool
		}{"reference", reference, true})
	}
	var out []*callsResult
	for _, t := range targets {
		cr := &callsResult{target: t.name, runs: map[string][]*bench.StormResult{}, load: map[string][]float64{}}
		for _, mix := range faultMixes {
			for i := 0; i < runs; i++ {
				cfg := bench.CallsStorm(t.bin)
				cfg.Reference, cfg.Seed = t.ref, int64(i)
				switch mix.name {
				case "mixed":
					cfg.Faults = bench.MixedFaults
				case "volume GET":
					cfg.Faults = bench.VolumeGetFaults
				}
				cr.load[mix.name] = append(cr.load[mix.name], loadAverage())
				start := time.Now()
				res, err := bench.RunStorm(ctx, cfg)
				fail(err)
				cr.runs[mix.name] = append(cr.runs[mix.name], res)
				logf("calls storm %s, %s, %d/%d: %s, %.2f calls/volume, %d failed answers", t.name, mix.name, i+1, runs,
					time.Since(start).Round(time.Second), float64(res.Calls)/float64(cfg.Volumes), res.Retries)
			}
		}
		out = append(out, cr)
	}
	return out, skip
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func (cr *callsResult) fig(mix string, f func(*bench.StormResult) float64) []float64 {
	var xs []float64
	for _, r := range cr.runs[mix] {
		xs = append(xs, f(r))
	}
	return xs
}

func failedAnswers(r *bench.StormResult) float64 { return float64(r.Retries) }

func failedCodes(rs []*bench.StormResult) string {
	sum := map[string]int{}
	for _, r := range rs {
		for c, n := range r.Failed {
			sum[c] += n
		}
	}
	if len(sum) == 0 {
		return ""
	}
	var parts []string
	for c, n := range sum {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return " (all runs: " + strings.Join(parts, ", ") + ")"
}

func (r *report) callsSection(w func(string, ...any)) {
	if len(r.calls) == 0 && r.callsSkip == "" {
		return
	}
	c := bench.CallsStorm("")
	w("### Storm of issue 20: ours beside the reference plugin\n\n")
	w("%d volumes, %d servers, %d workers, the `%s` profile, no rate limit on either side; four phases, each over every volume: ", c.Volumes, c.Nodes, c.Workers, c.Profile)
	w("CreateVolume, ControllerPublish (server i mod %d), ControllerUnpublish, DeleteVolume. Each plugin binary serves them over its unix socket, ", c.Nodes)
	w("controller only. Every error answer is retried after 1 s, as the sidecars do, and counted as a failed call the CO saw. ")
	w("Faults start after the plugin has authenticated and stop before the leak count. **Load** is the machine's 1-minute load average when each run began (2 cores, shared). ")
	if len(r.calls) > 0 {
		w("Each cell is the median of %d runs (min–max).\n\n", len(r.calls[0].runs["none"]))
	}
	if r.callsSkip != "" {
		w("The reference plugin was not run: %s.\n\n", r.callsSkip)
	}
	r.targetHeader(w, "Figure")
	row := func(name string, f func(cr *callsResult) string) {
		w("| %s |", name)
		for _, cr := range r.calls {
			w(" %s |", f(cr))
		}
		w("\n")
	}
	for _, mix := range faultMixes {
		row(fmt.Sprintf("API calls per volume, %s", mix.desc), func(cr *callsResult) string {
			return cell(cr.fig(mix.name, func(s *bench.StormResult) float64 { return float64(s.Calls) / float64(len(s.Up)) }), "%.2f")
		})
	}
	for _, mix := range faultMixes {
		row(fmt.Sprintf("Failed calls the CO saw, %s", mix.desc), func(cr *callsResult) string {
			return cell(cr.fig(mix.name, failedAnswers), "%.0f") + failedCodes(cr.runs[mix.name])
		})
	}
	for _, ph := range []string{bench.PhaseCreate, bench.PhasePublish, bench.PhaseUnpublish, bench.PhaseDelete} {
		for _, mix := range faultMixes {
			row(fmt.Sprintf("%s phase wall (s), %s", ph, mix.desc), func(cr *callsResult) string {
				return cell(cr.fig(mix.name, func(s *bench.StormResult) float64 { return s.Wall[ph].Seconds() }), "%.2f")
			})
		}
	}
	row("Peak RSS (MiB), no faults", func(cr *callsResult) string {
		return cell(cr.fig("none", func(s *bench.StormResult) float64 { return float64(s.PeakRSS) / (1 << 20) }), "%.1f")
	})
	for _, mix := range faultMixes {
		row(fmt.Sprintf("Volumes or attachments left, %s", mix.desc), func(cr *callsResult) string {
			return cell(cr.fig(mix.name, func(s *bench.StormResult) float64 { return float64(s.Leaked) }), "%.0f")
		})
	}
	for _, mix := range faultMixes {
		row(fmt.Sprintf("Load, %s runs", mix.desc), func(cr *callsResult) string { return cell(cr.load[mix.name], "%.1f") })
	}
	w("\n")
	r.endpointTable(w)
	r.callsTargets(w)
}

// targetHeader starts a table with a column per target.
func (r *report) targetHeader(w func(string, ...any), first string) {
	w("| %s |", first)
	for _, cr := range r.calls {
		w(" %s |", cr.target)
	}
	w("\n|---|")
	for range r.calls {
		w("---|")
	}
	w("\n")
}

// endpointTable lists the no-fault storm's calls per volume by endpoint.
func (r *report) endpointTable(w func(string, ...any)) {
	per := map[string]map[string]float64{} // endpoint -> target -> median per volume
	all := map[string]float64{}
	for _, cr := range r.calls {
		keys := map[string]bool{}
		for _, s := range cr.runs["none"] {
			for k := range s.Endpoints {
				keys[k] = true
			}
		}
		for k := range keys {
			xs := cr.fig("none", func(s *bench.StormResult) float64 { return float64(s.Endpoints[k]) / float64(len(s.Up)) })
			e := bench.Endpoint(k)
			if per[e] == nil {
				per[e] = map[string]float64{}
			}
			per[e][cr.target] += bench.Summarize(xs).Median
			all[e] += bench.Summarize(xs).Median
		}
	}
	w("API calls per volume by endpoint, no faults (median of runs; identity is Keystone):\n\n")
	r.targetHeader(w, "Endpoint")
	for _, e := range bench.SortedEndpoints(all) {
		w("| `%s` |", e)
		for _, cr := range r.calls {
			w(" %.2f |", per[e][cr.target])
		}
		w("\n")
	}
	w("\n")
}

func (r *report) callsTargets(w func(string, ...any)) {
	var ours *callsResult
	for _, cr := range r.calls {
		if cr.target == "ours" {
			ours = cr
		}
	}
	if ours == nil {
		return
	}
	med := func(mix string, f func(*bench.StormResult) float64) float64 {
		return bench.Summarize(ours.fig(mix, f)).Median
	}
	calls := med("none", func(s *bench.StormResult) float64 { return float64(s.Calls) / float64(len(s.Up)) })
	del := med("none", func(s *bench.StormResult) float64 { return s.Wall[bench.PhaseDelete].Seconds() })
	w("| Target | Measured (ours) | |\n|---|---|---|\n")
	w("| API calls per volume ≤ 8.1 (half the reference's 16.3 in issue 20) | %.2f | %s |\n", calls, verdict(calls <= 8.1))
	worstFailed, worstLeak, worstDel := 0.0, 0.0, 0.0
	for _, mix := range faultMixes {
		worstFailed = max(worstFailed, bench.Summarize(ours.fig(mix.name, failedAnswers)).Max)
		worstLeak = max(worstLeak, bench.Summarize(ours.fig(mix.name, func(s *bench.StormResult) float64 { return float64(s.Leaked) })).Max)
		if mix.name != "none" {
			worstDel = max(worstDel, med(mix.name, func(s *bench.StormResult) float64 { return s.Wall[bench.PhaseDelete].Seconds() }))
		}
	}
	w("| Delete phase under faults ≤ 2× its no-fault time | %.2f s against %.2f s (%.1f×, worst mix) | %s |\n", worstDel, del, worstDel/del, verdict(worstDel <= 2*del))
	w("| No failed call the CO sees, with or without faults | %.0f (worst run) | %s |\n", worstFailed, verdict(worstFailed == 0))
	w("| Nothing left after the teardown | %.0f (worst run) | %s |\n\n", worstLeak, verdict(worstLeak == 0))
}
