package bench_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/internal/bench"
)

// BenchmarkStorm builds the plugin and runs the 200-volume storm through
// it once per b.N.
func BenchmarkStorm(b *testing.B) {
	if testing.Short() {
		b.Skip("the storm takes minutes against a 20 requests/s cloud")
	}
	bin := filepath.Join(b.TempDir(), "cinder-csi-plugin")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cinder-csi/cinder-csi/cmd/cinder-csi-plugin").CombinedOutput(); err != nil {
		b.Fatalf("building the plugin: %v\n%s", err, out)
	}
	cfg := bench.DefaultStorm(bin)
	if os.Getenv("BENCH_PLUGIN_LOG") != "" {
		cfg.Log = os.Stderr
	}
	for i := 0; i < b.N; i++ {
		cfg.Seed = int64(i)
		r, err := bench.RunStorm(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		up, down := toSeconds(r.Up), toSeconds(r.Down)
		b.Logf("up wall %.1fs p50 %.1fs p99 %.1fs; down wall %.1fs p50 %.1fs p99 %.1fs; calls %d (%.1f/volume), polls %d, mutating %d, 429s %d, retries %d, peak RSS %.1f MiB, leaked %d",
			r.UpWall.Seconds(), bench.Percentile(up, 50), bench.Percentile(up, 99), r.DownWall.Seconds(), bench.Percentile(down, 50), bench.Percentile(down, 99),
			r.Calls, float64(r.Calls)/float64(cfg.Volumes), r.Polls, r.Mutating, r.TooMany, r.Retries, float64(r.PeakRSS)/(1<<20), r.Leaked)
		b.ReportMetric((r.UpWall + r.DownWall).Seconds(), "wall-s")
		b.ReportMetric(float64(r.TooMany), "429s")
	}
}

func toSeconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}
