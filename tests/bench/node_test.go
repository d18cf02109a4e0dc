package bench_test

import (
	"context"
	"testing"

	"github.com/cinder-csi/cinder-csi/internal/bench"
)

// BenchmarkNode times NodeStage + NodePublish against mkfs + mount by
// hand on the same loop device, for ext4 and XFS.
func BenchmarkNode(b *testing.B) {
	if r := bench.NodeSkipReason(); r != "" {
		b.Skip(r)
	}
	bench.Quiet()
	for i := 0; i < b.N; i++ {
		ss, err := bench.RunNode(context.Background(), []string{"ext4", "xfs"}, 3)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range ss {
			b.Logf("%s: driver %.0f ms, by hand %.0f ms, ratio %.2f", s.FsType, s.Driver.Seconds()*1000, s.Hand.Seconds()*1000, s.Driver.Seconds()/s.Hand.Seconds())
		}
	}
}
