package bench_test

import (
	"context"
	"testing"

	"github.com/cinder-csi/cinder-csi/internal/bench"
)

// BenchmarkOps runs one lifecycle per lane per b.N and reports, per
// operation, p50/p99 latency (s), the ratio over the cloud's intrinsic
// time, and API calls.
func BenchmarkOps(b *testing.B) {
	if testing.Short() {
		b.Skip("realistic latencies take about ten seconds per lifecycle")
	}
	bench.Quiet()
	for i := 0; i < b.N; i++ {
		r, err := bench.RunOps(context.Background(), bench.OpsConfig{Lanes: 4, Iterations: 2, Seed: int64(i)})
		if err != nil {
			b.Fatal(err)
		}
		st := r.Stats()
		for _, op := range bench.Ops {
			s := st[op]
			b.Logf("%-38s n=%d p50=%.3fs p99=%.3fs intrinsic p50=%.3fs p99=%.3fs ratio p50=%.2f p99=%.2f calls=%.0f mutating=%.0f polls=%.0f",
				op, s.N, s.P50, s.P99, s.IntrinsicP50, s.IntrinsicP99, s.RatioP50, s.RatioP99, s.Calls, s.Mutating, s.Polls)
		}
		b.ReportMetric(st[bench.OpCreate].RatioP50, "create-ratio-p50")
		b.ReportMetric(st[bench.OpPublish].RatioP50, "publish-ratio-p50")
	}
}
