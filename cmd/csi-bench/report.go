package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/internal/bench"
)

type report struct {
	runs, lanes, iterations int
	warmup                  int
	command                 string
	profile                 string
	machine                 string

	ops       []map[string]bench.OpStats
	refOps    []map[string]bench.OpStats // the same through the reference plugin
	latencies map[string]time.Duration

	storm     bench.StormConfig
	storms    []*bench.StormResult
	unlimited []*bench.StormResult

	nodes    [][]bench.NodeSample
	nodeSkip string

	calls     []*callsResult
	callsSkip string
}

// cell prints "median (min–max)" of one figure over the runs.
func cell(xs []float64, format string) string {
	if len(xs) == 0 {
		return "–"
	}
	s := bench.Summarize(xs)
	m := fmt.Sprintf(format, s.Median)
	if len(xs) == 1 {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, fmt.Sprintf(format, s.Min), fmt.Sprintf(format, s.Max))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *report) opFigure(op string, f func(bench.OpStats) float64) []float64 {
	var xs []float64
	for _, run := range r.ops {
		if s, ok := run[op]; ok {
			xs = append(xs, f(s))
		}
	}
	return xs
}

// intrinsicOp names the emulator latency setting behind each operation.
var intrinsicOp = map[string]string{
	bench.OpCreate: "volume_create", bench.OpPublish: "attach", bench.OpSnapshot: "snapshot_create",
	bench.OpExpand: "volume_extend", bench.OpUnpublish: "detach", bench.OpDeleteSnapshot: "snapshot_delete", bench.OpDelete: "volume_delete",
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Emulator benchmarks (tests/bench)\n\n")
	w("Machine: %s. Generated %s.\n\n", r.machine, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	w("Reproduce: `%s` (root for the node rows; `go run ./cmd/csi-bench -h` for the knobs; ", r.command)
	w("`go test -run '^$' -bench . -benchtime 1x ./tests/bench/` runs each benchmark once and logs its figures). ")
	w("Every cell is the median over %d runs, with the minimum and maximum in brackets. The machine is shared, so ", r.runs)
	w("the spread between runs is part of the result.\n\n")
	r.opsSection(w)
	r.stormSection(w)
	r.callsSection(w)
	r.nodeSection(w)
	return b.String()
}

func (r *report) opsSection(w func(string, ...any)) {
	if len(r.ops) == 0 {
		return
	}
	w("### Per operation\n\n")
	w("The emulator's `%s` profile (read from the emulator at run time): ", r.profile)
	var parts []string
	for _, op := range []string{"volume_create", "attach", "detach", "snapshot_create", "volume_extend", "volume_delete", "snapshot_delete"} {
		parts = append(parts, fmt.Sprintf("%s %s", op, r.latencies[op]))
	}
	w("%s, each ±20 %% jitter. ", strings.Join(parts, ", "))
	w("Each run is %d lanes × %d volume lifecycles (create, publish, publish again, snapshot, expand, unpublish, delete snapshot, delete), ", r.lanes, r.iterations)
	w("one operation at a time per lane; every lane has its own emulator and controller, so nothing (not even the poller) is shared. ")
	w("%d untimed lifecycles per lane come first (Keystone token, version discovery, connections, and each kind of change learned by the poller, as in a controller that has been running; `-warmup 1` measures a freshly started one). ", max(r.warmup, 1))
	w("**Intrinsic** is the cloud's own time: from the start of the RPC to the moment the emulator's state changed, ")
	w("seen in process every 2 ms without API calls; no client could answer sooner. **Ratio** is each operation's latency over its own intrinsic time, ")
	w("at p50 and p99. **Calls** are API calls per operation (Keystone excluded), **mutating** the POST/PUT/DELETE among them, ")
	w("**polls** those the shared poller made. CreateSnapshot is measured until ready (ListSnapshots while ReadyToUse is false, as the snapshotter does). ")
	w("**Reference calls** are the same lifecycles through cloud-provider-openstack's plugin (v1.36, over its socket); it waits for neither a create nor a delete, so it is not timed here.\n\n")
	w("| Operation | Intrinsic p50 (s) | p50 (s) | p99 (s) | Ratio p50 | Ratio p99 | Calls | Mutating | Polls | Reference calls |\n")
	w("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, op := range bench.Ops {
		f := func(g func(bench.OpStats) float64, format string) string { return cell(r.opFigure(op, g), format) }
		intr, r50, r99 := "–", "–", "–"
		if _, ok := intrinsicOp[op]; ok {
			intr = f(func(s bench.OpStats) float64 { return s.IntrinsicP50 }, "%.3f")
			r50 = f(func(s bench.OpStats) float64 { return s.RatioP50 }, "%.2f")
			r99 = f(func(s bench.OpStats) float64 { return s.RatioP99 }, "%.2f")
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", op, intr,
			f(func(s bench.OpStats) float64 { return s.P50 }, "%.3f"), f(func(s bench.OpStats) float64 { return s.P99 }, "%.3f"),
			r50, r99,
			f(func(s bench.OpStats) float64 { return s.Calls }, "%.0f"), f(func(s bench.OpStats) float64 { return s.Mutating }, "%.0f"),
			f(func(s bench.OpStats) float64 { return s.Polls }, "%.0f"), cell(refFigure(r.refOps, op, func(s bench.OpStats) float64 { return s.Calls }), "%.0f"))
	}
	w("\n")
	// Targets.
	worst50, worst99, worstOp50, worstOp99 := 0.0, 0.0, "", ""
	for _, op := range []string{bench.OpCreate, bench.OpPublish, bench.OpSnapshot, bench.OpExpand, bench.OpUnpublish, bench.OpDelete} {
		if m := bench.Summarize(r.opFigure(op, func(s bench.OpStats) float64 { return s.RatioP50 })).Median; m > worst50 {
			worst50, worstOp50 = m, op
		}
		if m := bench.Summarize(r.opFigure(op, func(s bench.OpStats) float64 { return s.RatioP99 })).Median; m > worst99 {
			worst99, worstOp99 = m, op
		}
	}
	createNonPoll := bench.Summarize(r.opFigure(bench.OpCreate, func(s bench.OpStats) float64 { return s.Calls - s.Polls })).Max
	againMut := bench.Summarize(r.opFigure(bench.OpPublishAgain, func(s bench.OpStats) float64 { return s.Mutating })).Max
	w("| Target | Measured (median of runs) | |\n|---|---|---|\n")
	w("| Overhead ≤ 1.10× intrinsic at p50 | worst %.2f× (%s) | %s |\n", worst50, worstOp50, verdict(worst50 <= 1.10))
	w("| Overhead ≤ 1.25× intrinsic at p99 | worst %.2f× (%s) | %s |\n", worst99, worstOp99, verdict(worst99 <= 1.25))
	w("| CreateVolume ≤ 3 API calls plus shared polls | %.0f besides polls (name lookup, create; at most, over all runs) | %s |\n", createNonPoll, verdict(createNonPoll <= 3))
	w("| Publish to an already attached node: 0 mutating calls | %.0f (at most, over all runs) | %s |\n", againMut, verdict(againMut == 0))
	if len(r.refOps) > 0 {
		var over []string
		for _, op := range bench.Ops {
			ours := bench.Summarize(r.opFigure(op, func(s bench.OpStats) float64 { return s.Calls })).Median
			ref := bench.Summarize(refFigure(r.refOps, op, func(s bench.OpStats) float64 { return s.Calls })).Median
			if ours > ref {
				over = append(over, fmt.Sprintf("%s %.0f > %.0f", op, ours, ref))
			}
		}
		w("| Every sequential RPC: no more calls than the reference's | %s | %s |\n", orNone(over), verdict(len(over) == 0))
	}
	w("\n")
}

// refFigure is opFigure over the reference plugin's runs.
func refFigure(runs []map[string]bench.OpStats, op string, f func(bench.OpStats) float64) []float64 {
	var xs []float64
	for _, run := range runs {
		if s, ok := run[op]; ok {
			xs = append(xs, f(s))
		}
	}
	return xs
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none over"
	}
	return strings.Join(xs, "; ")
}

func (r *report) stormSection(w func(string, ...any)) {
	if len(r.storms) == 0 {
		return
	}
	c := r.storm
	w("### Storm\n\n")
	w("%d CreateVolume then ControllerPublish (node i mod %d) from %d workers, as the provisioner's and attacher's worker pools issue them; ", c.Volumes, c.Nodes, c.Workers)
	w("then the teardown, ControllerUnpublish then DeleteVolume, from %d workers. The real `cinder-csi-plugin` binary serves them over its unix socket ", c.Workers)
	w("(`--openstack-api-qps %g --openstack-api-burst %d`), against the emulator's `%s` profile with a rate limit of %g requests/s per project (429 beyond it). ", c.PluginQPS, c.PluginBurst, c.Profile, c.CloudRPS)
	w("Aborted or Unavailable answers are retried after 1 s, as the sidecars do. Latencies are per volume, for both RPCs of a phase. ")
	w("Calls are every API call the cloud saw (Keystone and 429s included); 429s are counted by the plugin's `openstack_api_requests_total{code=\"429\"}`; ")
	w("peak RSS is the plugin's VmHWM.\n\n")
	fig := func(rs []*bench.StormResult, f func(*bench.StormResult) float64) []float64 {
		var xs []float64
		for _, s := range rs {
			xs = append(xs, f(s))
		}
		return xs
	}
	secs := func(ds []time.Duration, p float64) float64 {
		xs := make([]float64, len(ds))
		for i, d := range ds {
			xs[i] = d.Seconds()
		}
		return bench.Percentile(xs, p)
	}
	v := float64(c.Volumes)
	// What one GET per waiter per poll would cost: every call that is not
	// a poll, plus, for each of the four waiting RPCs of a volume, the
	// polls a lone operation of that kind makes (from the table above; a
	// storm's waits are longer, so this understates it).
	lone := 0.0
	for _, op := range []string{bench.OpCreate, bench.OpPublish, bench.OpUnpublish, bench.OpDelete} {
		lone += bench.Summarize(r.opFigure(op, func(s bench.OpStats) float64 { return s.Polls })).Median
	}
	naive := func(s *bench.StormResult) float64 { return float64(s.Calls-s.Polls)/v + lone }
	rows := []struct {
		name   string
		f      func(*bench.StormResult) float64
		format string
	}{
		{"Create + publish: wall time (s)", func(s *bench.StormResult) float64 { return s.UpWall.Seconds() }, "%.1f"},
		{"Create + publish per volume: p50 (s)", func(s *bench.StormResult) float64 { return secs(s.Up, 50) }, "%.1f"},
		{"Create + publish per volume: p99 (s)", func(s *bench.StormResult) float64 { return secs(s.Up, 99) }, "%.1f"},
		{"Teardown: wall time (s)", func(s *bench.StormResult) float64 { return s.DownWall.Seconds() }, "%.1f"},
		{"Teardown per volume: p50 (s)", func(s *bench.StormResult) float64 { return secs(s.Down, 50) }, "%.1f"},
		{"Teardown per volume: p99 (s)", func(s *bench.StormResult) float64 { return secs(s.Down, 99) }, "%.1f"},
		{"API calls, total", func(s *bench.StormResult) float64 { return float64(s.Calls) }, "%.0f"},
		{"API calls per volume", func(s *bench.StormResult) float64 { return float64(s.Calls) / v }, "%.2f"},
		{"… of which shared polls per volume", func(s *bench.StormResult) float64 { return float64(s.Polls) / v }, "%.2f"},
		{"… of which mutating per volume", func(s *bench.StormResult) float64 { return float64(s.Mutating) / v }, "%.2f"},
		{"One GET per waiter per poll would cost, per volume (at least)", naive, "%.2f"},
		{"Calls per volume over that", func(s *bench.StormResult) float64 { return float64(s.Calls) / v / naive(s) }, "%.2f"},
		{"Request rate the cloud saw (calls/s)", func(s *bench.StormResult) float64 { return float64(s.Calls) / (s.UpWall + s.DownWall).Seconds() }, "%.1f"},
		{"429s received", func(s *bench.StormResult) float64 { return float64(s.TooMany) }, "%.0f"},
		{"RPC retries (Aborted/Unavailable)", func(s *bench.StormResult) float64 { return float64(s.Retries) }, "%.0f"},
		{"Peak RSS of the plugin (MiB)", func(s *bench.StormResult) float64 { return float64(s.PeakRSS) / (1 << 20) }, "%.1f"},
		{"Volumes or attachments left after teardown", func(s *bench.StormResult) float64 { return float64(s.Leaked) }, "%.0f"},
	}
	w("| Figure | With the limiter (%d runs) |", len(r.storms))
	if len(r.unlimited) > 0 {
		w(" Without it (%d run%s) |", len(r.unlimited), plural(len(r.unlimited)))
	}
	w("\n|---|---|")
	if len(r.unlimited) > 0 {
		w("---|")
	}
	w("\n")
	for _, row := range rows {
		w("| %s | %s |", row.name, cell(fig(r.storms, row.f), row.format))
		if len(r.unlimited) > 0 {
			w(" %s |", cell(fig(r.unlimited, row.f), row.format))
		}
		w("\n")
	}
	w("\n")
	ratio := bench.Summarize(fig(r.storms, func(s *bench.StormResult) float64 { return float64(s.Calls) / v / naive(s) })).Max
	tooMany := bench.Summarize(fig(r.storms, func(s *bench.StormResult) float64 { return float64(s.TooMany) })).Max
	w("| Target | Measured | |\n|---|---|---|\n")
	w("| Storm API calls per volume ≤ half of one GET per waiter per poll | %.2f of it (worst run) | %s |\n", ratio, verdict(ratio <= 0.5))
	w("| No 429 storm: the client-side limiter keeps us under the cloud's limit | %.0f 429s (worst run) | %s |\n\n", tooMany, verdict(tooMany == 0))
	minWall := bench.Summarize(fig(r.storms, func(s *bench.StormResult) float64 { return float64(s.Calls) / c.PluginQPS })).Median
	w("At %g requests/s the calls alone take %.0f s, so the storm's wall time is set by the rate limit, not by Cinder's latency: ", c.PluginQPS, minWall)
	w("fewer calls per volume is what makes it faster.\n\n")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (r *report) nodeSection(w func(string, ...any)) {
	w("### Node\n\n")
	if r.nodeSkip != "" {
		w("Skipped on this machine: %s.\n\n", r.nodeSkip)
		return
	}
	if len(r.nodes) == 0 {
		return
	}
	w("NodeStageVolume (device discovery, filesystem probe, mkfs, mount) plus NodePublishVolume (bind mount) on a 1 GiB loop device ")
	w("that the emulator hot-plugged for a ControllerPublish, against `mkfs.<fs> -F|-f <dev>` and `mount -t <fs> <dev> <dir>` by hand on the same device. ")
	w("The device is discarded before each (a discarded loop device reads as zeros, as a new Cinder volume does), and the order alternates. Each run takes the median of 3 pairs per filesystem.\n\n")
	w("| Filesystem | Driver (ms) | By hand (ms) | Ratio |\n|---|---|---|---|\n")
	worst := 0.0
	for _, fs := range []string{"ext4", "xfs"} {
		var drv, hand, ratio []float64
		for _, run := range r.nodes {
			var d, h, q []float64
			for _, s := range run {
				if s.FsType == fs {
					d = append(d, s.Driver.Seconds()*1000)
					h = append(h, s.Hand.Seconds()*1000)
					q = append(q, s.Driver.Seconds()/s.Hand.Seconds())
				}
			}
			drv = append(drv, bench.Percentile(d, 50))
			hand = append(hand, bench.Percentile(h, 50))
			ratio = append(ratio, bench.Percentile(q, 50))
		}
		worst = max(worst, bench.Summarize(ratio).Median)
		w("| %s | %s | %s | %s |\n", fs, cell(drv, "%.0f"), cell(hand, "%.0f"), cell(ratio, "%.2f"))
	}
	w("\n| Target | Measured | |\n|---|---|---|\n")
	w("| Node stage ≤ 1.2× raw mkfs and mount | worst %.2f× | %s |\n\n", worst, verdict(worst <= 1.2))
}
