package emulator

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Faults are injected failures (host.Faults: the same settings reach the
// services in their own packages). The zero value injects nothing.
type Faults = host.Faults

func normalizeFaults(f Faults) Faults {
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	f.OnlyPaths = append([]string(nil), f.OnlyPaths...)
	return f
}

// SetFaults replaces the fault settings at run time.
// Attachments held by a stuck fault resume once that fault is cleared.
func (e *Emulator) SetFaults(f Faults) {
	e.faultMu.Lock()
	e.faults = normalizeFaults(f)
	e.buckets = map[string]*tokenBucket{}
	e.faultMu.Unlock()
	e.resumeStuck(f)
	for _, s := range e.serviceList {
		s.FaultsChanged(e.CurrentFaults())
	}
}

// CurrentFaults returns the fault settings in force.
func (e *Emulator) CurrentFaults() Faults {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	f := e.faults
	f.OnlyPaths = append([]string(nil), f.OnlyPaths...)
	return f
}

func (e *Emulator) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.rng.Float64() < p
}

func retryAfterSeconds(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

// injectFault answers the request with an injected failure and returns true,
// or returns false to let it through.
func (e *Emulator) injectFault(q *req) bool {
	key := e.projectOfRequest(q) // before faultMu: lock order is mu, then faultMu
	e.faultMu.Lock()
	f := e.faults
	applies := len(f.OnlyPaths) == 0
	for _, p := range f.OnlyPaths {
		if p == q.tmpl || p == q.r.Method+" "+q.tmpl || strings.HasSuffix(q.tmpl, p) {
			applies = true
		}
	}
	var code int
	switch {
	case applies && f.ErrorRate > 0 && e.rng.Float64() < f.ErrorRate:
		code = http.StatusInternalServerError
		if e.rng.Intn(2) == 1 {
			code = http.StatusServiceUnavailable
		}
	case applies && f.RateLimitRate > 0 && e.rng.Float64() < f.RateLimitRate:
		code = http.StatusTooManyRequests
	case f.RateLimitRPS > 0:
		b := e.buckets[key]
		now := time.Now()
		burst := math.Max(1, f.RateLimitRPS)
		if b == nil {
			b = &tokenBucket{tokens: burst, last: now}
			e.buckets[key] = b
		}
		b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*f.RateLimitRPS)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
		} else {
			code = http.StatusTooManyRequests
		}
	}
	e.faultMu.Unlock()
	switch code {
	case 0:
		return false
	case http.StatusTooManyRequests:
		ra := retryAfterSeconds(f.RetryAfter)
		q.w.Header().Set("Retry-After", ra)
		writeJSON(q.w, code, map[string]any{"overLimit": map[string]any{"code": 429, "message": "This request was rate-limited.", "retryAfter": ra}})
	case http.StatusServiceUnavailable:
		writeError(q.w, code, "The service is temporarily unavailable (injected fault).")
	default:
		writeError(q.w, code, fmt.Sprintf("The server has either erred or is incapable of performing the requested operation (injected fault). %s", q.requestID))
	}
	return true
}

// projectOfRequest keys the rate limiter; it peeks at the token without
// failing, so unauthenticated calls share one bucket.
func (e *Emulator) projectOfRequest(q *req) string {
	id := q.r.Header.Get("X-Auth-Token")
	if id == "" {
		return "-"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.st.Tokens[id]; t != nil {
		return t.ProjectID
	}
	return "-"
}
