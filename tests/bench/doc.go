// Package bench holds the Go benchmarks of the driver against the
// OpenStack emulator (go test -run '^$' -bench . -benchtime 1x
// ./tests/bench/). The measurements themselves live in internal/bench, so
// that cmd/csi-bench, which repeats them and writes docs/benchmarks.md,
// depends on no test code.
package bench
