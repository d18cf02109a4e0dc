package bench

import (
	"math"
	"sort"
	"time"
)

// Percentile returns the p-th percentile (0..100) of xs by linear
// interpolation between closest ranks; 0 for no samples.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 1 {
		return s[0]
	}
	r := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(r))
	hi := int(math.Ceil(r))
	return s[lo] + (s[hi]-s[lo])*(r-float64(lo))
}

// Summary is the median, min and max of one figure over several runs.
type Summary struct{ Median, Min, Max float64 }

// Summarize reduces per-run values to their median, min and max.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return Summary{Median: Percentile(s, 50), Min: s[0], Max: s[len(s)-1]}
}

func seconds(d time.Duration) float64 { return d.Seconds() }
