package emulator

import (
	"net/http"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Service names double as the first path segment.
const (
	svcIdentity = "identity"
	svcVolume   = "volume"
	svcCompute  = "compute"
	svcAdmin    = "admin"
	svcMetadata = "metadata"
)

type handler func(e *Emulator, q *req)

type route struct {
	method  string
	tmpl    string // template reported by Counters, e.g. "/volume/v3/{project_id}/volumes"
	match   []string
	service string
	public  bool // no token, no microversion (version documents, auth itself)
	h       handler
	literal int
}

// req carries one request through the handlers.
type req struct {
	w         http.ResponseWriter
	r         *http.Request
	params    map[string]string
	tok       *token
	mv        microversion
	service   string
	requestID string
	tmpl      string
}

func (q *req) p(name string) string { return q.params[name] }

func (e *Emulator) buildRoutes() []*route {
	var rs []*route
	add := func(method, service, tmpl string, public bool, h handler) {
		// Matching ignores the project segment; Counters reports it.
		m := strings.Replace(tmpl, "/{project_id}", "", 1)
		segs := splitPath(m)
		lit := 0
		for _, s := range segs {
			if !strings.HasPrefix(s, "{") {
				lit++
			}
		}
		rs = append(rs, &route{method: method, tmpl: tmpl, match: segs, service: service, public: public, h: h, literal: lit})
	}
	e.identityRoutes(add)
	e.cinderRoutes(add)
	e.novaRoutes(add)
	e.lifecycleRoutes(add)
	e.adminRoutes(add)
	e.metadataRoutes(add)
	e.serviceRoutes(add)
	e.manilaAdminRoutes(add)
	return rs
}

type addFunc func(method, service, tmpl string, public bool, h handler)

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Collections that may follow /volume/v3/ or /compute/v2.1/ directly; any
// other segment there is a project id, as in the catalog URLs.
var cinderTop = map[string]bool{
	"volumes": true, "snapshots": true, "backups": true, "types": true, "os-availability-zone": true,
	"os-quota-sets": true, "limits": true, "messages": true, "extensions": true, "attachments": true,
	"groups": true, "group_types": true, "group_snapshots": true,
}

var novaTop = map[string]bool{
	"servers": true, "os-availability-zone": true, "flavors": true, "limits": true, "extensions": true, "os-volumes": true,
}

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &req{w: w, r: r, params: map[string]string{}, requestID: "req-" + newUUID()}
	w.Header().Set("X-Openstack-Request-Id", q.requestID)

	segs := splitPath(r.URL.Path)
	if len(segs) >= 3 && ((segs[0] == svcVolume && segs[1] == "v3" && !cinderTop[segs[2]]) ||
		(segs[0] == svcCompute && segs[1] == "v2.1" && !novaTop[segs[2]]) || e.projectSegment(segs)) {
		q.params["project_id"] = segs[2]
		segs = append(segs[:2:2], segs[3:]...)
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt := e.findRoute(method, segs, q.params)
	if rt == nil {
		e.noRoute(w, r, segs)
		return
	}
	q.service = rt.service
	q.tmpl = rt.tmpl
	if e.isAPIService(rt.service) {
		e.count(r.Method + " " + rt.tmpl)
		if e.injectFault(q) {
			return
		}
	}
	if _, versioned := e.versionRule(rt.service); versioned && !rt.public && !e.admit(q) {
		return
	}
	rt.h(e, q)
}

// noRoute answers a path no route serves: 405 when another method would
// match, 404 otherwise (counted as an API call when under a service).
func (e *Emulator) noRoute(w http.ResponseWriter, r *http.Request, segs []string) {
	service := ""
	if len(segs) > 0 {
		service = segs[0]
	}
	if e.isAPIService(service) {
		e.count(r.Method + " " + r.URL.Path)
	}
	if e.pathExists(segs) {
		writeError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		return
	}
	writeError(w, http.StatusNotFound, "The resource could not be found.")
}

// admit authenticates a call to a versioned API, checks that the URL's
// project is the token's and negotiates the microversion; false means it
// has answered.
func (e *Emulator) admit(q *req) bool {
	if !e.authenticate(q) {
		return false
	}
	if pid := q.params["project_id"]; pid != "" && pid != q.tok.ProjectID {
		writeError(q.w, http.StatusBadRequest, "Malformed request url")
		return false
	}
	return e.negotiateMicroversion(q)
}

func (e *Emulator) isAPIService(s string) bool {
	return s == svcIdentity || s == svcVolume || s == svcCompute || e.services[s] != nil
}

func (e *Emulator) findRoute(method string, segs []string, params map[string]string) *route {
	var best *route
	for _, rt := range e.routes {
		if rt.method != method || len(rt.match) != len(segs) {
			continue
		}
		ok := true
		for i, m := range rt.match {
			if !strings.HasPrefix(m, "{") && m != segs[i] {
				ok = false
				break
			}
		}
		if ok && (best == nil || rt.literal > best.literal) {
			best = rt
		}
	}
	if best != nil {
		for i, m := range best.match {
			if strings.HasPrefix(m, "{") {
				params[strings.Trim(m, "{}")] = segs[i]
			}
		}
	}
	return best
}

func (e *Emulator) pathExists(segs []string) bool {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
		if e.findRoute(m, segs, map[string]string{}) != nil {
			return true
		}
	}
	return false
}

// authenticate checks X-Auth-Token the way keystonemiddleware does: a
// missing, unknown or expired token is 401 so clients re-authenticate.
func (e *Emulator) authenticate(q *req) bool {
	id := q.r.Header.Get("X-Auth-Token")
	e.mu.Lock()
	t := e.st.Tokens[id]
	var tc token
	gone := false
	if t != nil {
		tc = *t
		gone = e.tokenGoneLocked(t) != ""
	}
	e.mu.Unlock()
	if t == nil || time.Now().After(tc.ExpiresAt) || gone {
		q.w.Header().Set("WWW-Authenticate", "Keystone uri=\""+e.AuthURL()+"\"")
		writeJSON(q.w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
			"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
		return false
	}
	if tc.ProjectID == "" {
		writeError(q.w, http.StatusForbidden, "Policy doesn't allow this operation: the token is not scoped to a project.")
		return false
	}
	q.tok = &tc
	return true
}

func (e *Emulator) baseURLFor(r *http.Request) string {
	if r != nil && r.Host != "" {
		return "http://" + r.Host
	}
	return e.baseURL
}

// Error bodies follow the Cinder/Nova fault wrapper shape:
// {"itemNotFound": {"code": 404, "message": "..."}}.
func writeError(w http.ResponseWriter, code int, msg string) { host.WriteFault(w, code, msg) }

func writeJSON(w http.ResponseWriter, code int, v any) { host.WriteJSON(w, code, v) }

// decodeBody reads a JSON body; on failure it answers 400 and returns false.
func decodeBody(q *req, v any) bool { return host.DecodeBody(q.w, q.r, v) }

const cinderTime = host.OpenStackTime
const novaTime = "2006-01-02T15:04:05Z"

func ctime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(cinderTime)
}

func ntime(t time.Time) string { return t.UTC().Format(novaTime) }
