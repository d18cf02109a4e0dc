package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

type microversion struct{ major, minor int }

func parseMicroversion(s string) (microversion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 2 {
		return microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return microversion{}, fmt.Errorf("bad microversion %q", s)
	}
	return microversion{a, b}, nil
}

func (m microversion) String() string { return fmt.Sprintf("%d.%d", m.major, m.minor) }

func (m microversion) less(o microversion) bool {
	return m.major < o.major || (m.major == o.major && m.minor < o.minor)
}

// atLeast reports whether the request's microversion is >= "X.Y".
func (m microversion) atLeast(s string) bool {
	o, err := parseMicroversion(s)
	if err != nil {
		panic(err)
	}
	return !m.less(o)
}

// negotiateMicroversion reads OpenStack-API-Version ("volume 3.x" /
// "compute 2.x", or "latest") and the legacy X-OpenStack-*-API-Version
// headers. Absent means the minimum (3.0, 2.1). Out of range is 406.
func (e *Emulator) negotiateMicroversion(q *req) bool {
	var min, max microversion
	var names []string
	var legacy string
	if q.service == svcVolume {
		min, max = microversion{3, 0}, e.maxCinder
		names = []string{"volume", "block-storage", "block-store", "volumev3"}
		legacy = "X-OpenStack-Volume-API-Version"
	} else {
		min, max = microversion{2, 1}, e.maxNova
		names = []string{"compute"}
		legacy = "X-OpenStack-Nova-API-Version"
	}
	requested := ""
	for _, h := range q.r.Header.Values("OpenStack-API-Version") {
		for _, item := range strings.Split(h, ",") {
			f := strings.Fields(item)
			if len(f) == 2 {
				for _, n := range names {
					if strings.EqualFold(f[0], n) {
						requested = f[1]
					}
				}
			}
		}
	}
	if requested == "" {
		requested = q.r.Header.Get(legacy)
	}
	mv := min
	switch {
	case requested == "":
	case strings.EqualFold(requested, "latest"):
		mv = max
	default:
		v, err := parseMicroversion(requested)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", requested))
			return false
		}
		if v.less(min) || max.less(v) {
			writeError(q.w, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, min, max))
			return false
		}
		mv = v
	}
	q.mv = mv
	h := q.w.Header()
	if q.service == svcVolume {
		h.Set("OpenStack-API-Version", "volume "+mv.String())
	} else {
		h.Set("OpenStack-API-Version", "compute "+mv.String())
		h.Set("X-OpenStack-Nova-API-Version", mv.String())
	}
	h.Set("Vary", "OpenStack-API-Version")
	return true
}
