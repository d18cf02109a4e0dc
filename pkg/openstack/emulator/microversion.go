package emulator

import (
	"net/http"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

type microversion = host.Microversion

func parseMicroversion(s string) (microversion, error) { return host.ParseMicroversion(s) }

// versionRule is how Cinder and Nova read OpenStack-API-Version ("volume
// 3.x" / "compute 2.x", or "latest") and the legacy X-OpenStack-*-API-Version
// headers. Absent means the minimum (3.0, 2.1). Out of range is 406.
func (e *Emulator) versionRule(service string) (host.VersionRule, bool) {
	switch service {
	case svcVolume:
		return host.VersionRule{Min: microversion{Major: 3, Minor: 0}, Max: e.maxCinder,
			Names:  []string{"volume", "block-storage", "block-store", "volumev3"},
			Legacy: "X-OpenStack-Volume-API-Version",
			Echo: func(h http.Header, mv microversion) {
				h.Set("OpenStack-API-Version", "volume "+mv.String())
				h.Set("Vary", "OpenStack-API-Version")
			}}, true
	case svcCompute:
		return host.VersionRule{Min: microversion{Major: 2, Minor: 1}, Max: e.maxNova,
			Names:  []string{"compute"},
			Legacy: "X-OpenStack-Nova-API-Version",
			Echo: func(h http.Header, mv microversion) {
				h.Set("OpenStack-API-Version", "compute "+mv.String())
				h.Set("X-OpenStack-Nova-API-Version", mv.String())
				h.Set("Vary", "OpenStack-API-Version")
			}}, true
	}
	if s := e.services[service]; s != nil {
		return s.Version(), true
	}
	return host.VersionRule{}, false
}

// negotiateMicroversion sets q.mv by the service's rule; on failure it has
// answered and returns false.
func (e *Emulator) negotiateMicroversion(q *req) bool {
	rule, _ := e.versionRule(q.service)
	mv, ok := rule.Negotiate(q.w, q.r)
	q.mv = mv
	return ok
}
