package emulator

// count records one API call under "METHOD /path/template".
func (e *Emulator) count(key string) {
	e.total.Add(1)
	e.countMu.Lock()
	e.counters[key]++
	e.countMu.Unlock()
}

// Counters returns API calls per "METHOD /path/template", e.g.
// "GET /volume/v3/{project_id}/volumes/detail". Injected faults count too.
func (e *Emulator) Counters() map[string]int64 {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	out := make(map[string]int64, len(e.counters))
	for k, v := range e.counters {
		out[k] = v
	}
	return out
}

// TotalCalls counts API calls (identity, volume, compute), not admin or metadata.
func (e *Emulator) TotalCalls() int64 { return e.total.Load() }

// ResetCounters zeroes every counter.
func (e *Emulator) ResetCounters() {
	e.countMu.Lock()
	e.counters = map[string]int64{}
	e.total.Store(0)
	e.countMu.Unlock()
}
