package bench

import "time"

// OpStats is one run's figures for one operation.
type OpStats struct {
	N                          int
	P50, P99                   float64 // seconds
	IntrinsicP50, IntrinsicP99 float64 // seconds
	RatioP50, RatioP99         float64 // each operation's latency over its own intrinsic time: p50, p99
	Calls, Mutating, Polls     float64 // per operation, median
}

// Stats reduces one run's samples.
func (r *OpsResult) Stats() map[string]OpStats {
	out := map[string]OpStats{}
	for op, ss := range r.Samples {
		var lat, intr, ratio, calls, mut, polls []float64
		for _, s := range ss {
			lat = append(lat, seconds(s.Latency))
			if s.Intrinsic > 0 {
				intr = append(intr, seconds(s.Intrinsic))
				ratio = append(ratio, seconds(s.Latency)/seconds(s.Intrinsic))
			}
			calls = append(calls, float64(s.Calls))
			mut = append(mut, float64(s.Mutating))
			polls = append(polls, float64(s.Polls))
		}
		st := OpStats{N: len(ss), P50: Percentile(lat, 50), P99: Percentile(lat, 99),
			Calls: Percentile(calls, 50), Mutating: Percentile(mut, 50), Polls: Percentile(polls, 50)}
		if len(intr) > 0 {
			st.IntrinsicP50, st.IntrinsicP99 = Percentile(intr, 50), Percentile(intr, 99)
			st.RatioP50, st.RatioP99 = Percentile(ratio, 50), Percentile(ratio, 99)
		}
		out[op] = st
	}
	return out
}

var _ = time.Second
