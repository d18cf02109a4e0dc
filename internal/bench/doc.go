// Package bench measures the driver against the OpenStack emulator: the
// latency of each controller operation beside the cloud's own time for it,
// the API calls each one makes, a 200-volume storm through the real plugin
// binary, and the node's stage and publish against mkfs and mount by hand.
//
// The measurements are plain functions (RunOps, RunStorm, RunNode) so that
// cmd/csi-bench can repeat them and write docs/benchmarks.md; the Go
// benchmarks in tests/bench call the same functions once each. This is not
// test code: a command may import it (internal/ keeps it out of other
// modules). Nothing
// here asserts on time: the numbers are reported, never checked.
package bench

import (
	"flag"
	"io"

	"k8s.io/klog/v2"
)

// Quiet sends the driver's klog output nowhere, so that a benchmark's
// report is not buried under a log line per operation.
func Quiet() {
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
