package host

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Microversion is an OpenStack API microversion "major.minor".
type Microversion struct{ Major, Minor int }

// ParseMicroversion reads "X.Y".
func ParseMicroversion(s string) (Microversion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 2 {
		return Microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return Microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	return Microversion{a, b}, nil
}

// MustMicroversion is ParseMicroversion for constants.
func MustMicroversion(s string) Microversion {
	m, err := ParseMicroversion(s)
	if err != nil {
		panic(err)
	}
	return m
}

func (m Microversion) String() string { return fmt.Sprintf("%d.%d", m.Major, m.Minor) }

// Less orders microversions.
func (m Microversion) Less(o Microversion) bool {
	return m.Major < o.Major || (m.Major == o.Major && m.Minor < o.Minor)
}

// AtLeast reports whether m >= "X.Y"; s must be well formed.
func (m Microversion) AtLeast(s string) bool { return !m.Less(MustMicroversion(s)) }

// VersionRule is how a service reads and answers its microversion.
type VersionRule struct {
	Min, Max Microversion
	// Default applies when the request names none (zero: Min).
	Default Microversion
	// Names are the service names accepted in OpenStack-API-Version
	// ("volume 3.44"); none means the header is not read.
	Names []string
	// Legacy is the older per-service header (X-OpenStack-Manila-API-Version).
	Legacy string
	// Echo sets the response headers that report the version in force.
	Echo func(h http.Header, mv Microversion)
	// NoLatest refuses "latest" as a malformed version (Manila does).
	NoLatest bool
	// Refuse, when set, answers a malformed (badFormat) or out-of-range
	// version instead of the default 400 and 406 with interpolated
	// messages: Manila Zed answers them uninterpolated.
	Refuse func(w http.ResponseWriter, badFormat bool, requested string)
}

func (rule VersionRule) refuse(w http.ResponseWriter, badFormat bool, requested string) {
	if rule.Refuse != nil {
		rule.Refuse(w, badFormat, requested)
		return
	}
	if badFormat {
		WriteFault(w, http.StatusBadRequest, fmt.Sprintf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", requested))
		return
	}
	v, _ := ParseMicroversion(requested)
	WriteFault(w, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, rule.Min, rule.Max))
}

// Negotiate reads the request's microversion by rule. A malformed one is
// 400 and one outside [Min, Max] is 406, with the messages the OpenStack
// services share; on failure it has answered and returns false.
func (rule VersionRule) Negotiate(w http.ResponseWriter, r *http.Request) (Microversion, bool) {
	requested := ""
	for _, h := range r.Header.Values("OpenStack-API-Version") {
		for _, item := range strings.Split(h, ",") {
			f := strings.Fields(item)
			if len(f) != 2 {
				continue
			}
			for _, n := range rule.Names {
				if strings.EqualFold(f[0], n) {
					requested = f[1]
				}
			}
		}
	}
	if requested == "" && rule.Legacy != "" {
		requested = r.Header.Get(rule.Legacy)
	}
	mv := rule.Default
	if mv == (Microversion{}) {
		mv = rule.Min
	}
	switch {
	case requested == "":
	case strings.EqualFold(requested, "latest") && !rule.NoLatest:
		mv = rule.Max
	default:
		v, err := ParseMicroversion(requested)
		if err != nil {
			rule.refuse(w, true, requested)
			return Microversion{}, false
		}
		if v.Less(rule.Min) || rule.Max.Less(v) {
			rule.refuse(w, false, requested)
			return Microversion{}, false
		}
		mv = v
	}
	if rule.Echo != nil {
		rule.Echo(w.Header(), mv)
	}
	return mv, true
}
