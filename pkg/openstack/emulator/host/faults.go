package host

import "time"

// Faults are injected failures. The zero value injects nothing.
type Faults struct {
	ErrorRate       float64       `json:"error_rate"`        // probability of 500 or 503 (half each) on any API request
	RateLimitRate   float64       `json:"rate_limit_rate"`   // probability of 429 with Retry-After
	RetryAfter      time.Duration `json:"-"`                 // default 1s (header in whole seconds, minimum 1)
	RateLimitRPS    float64       `json:"rate_limit_rps"`    // >0: a token bucket per project; excess gets 429
	VolumeErrorRate float64       `json:"volume_error_rate"` // probability a new volume ends in "error" (with a message)
	StuckAttaching  bool          `json:"stuck_attaching"`   // new attachments stay "attaching"
	StuckReserved   bool          `json:"stuck_reserved"`    // new attachments stay "reserved"
	OnlyPaths       []string      `json:"only_paths"`        // path templates ErrorRate/RateLimitRate apply to; empty = all

	// Manila.
	ShareErrorRate       float64 `json:"share_error_rate"`        // probability a new share ends in "error" (with a user message)
	AccessRuleErrorRate  float64 `json:"access_rule_error_rate"`  // probability a new access rule ends in "error"
	ShareExtendErrorRate float64 `json:"share_extend_error_rate"` // probability an extend ends in "extending_error" (with a user message)
	// StuckAccessRules holds new access rules in queued_to_apply until
	// the fault is cleared (the race of the reference plugin's #3000).
	StuckAccessRules bool `json:"stuck_access_rules"`
}
