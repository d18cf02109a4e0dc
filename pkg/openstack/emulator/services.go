package emulator

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

// Services in packages of their own (Manila) plug in through package host:
// coreHost is the core's side of that contract.
type coreHost struct{ e *Emulator }

var _ host.Host = coreHost{}

func (h coreHost) Later(op string, fraction float64, fn func()) { h.e.later(op, fraction, fn) }
func (h coreHost) Chance(p float64) bool                        { return h.e.chance(p) }
func (h coreHost) Faults() host.Faults                          { return h.e.CurrentFaults() }
func (h coreHost) MarkDirty()                                   { h.e.markDirty() }
func (h coreHost) DataDir() string                              { return h.e.opts.DataDir }
func (h coreHost) AvailabilityZones() []string {
	return append([]string(nil), h.e.opts.AvailabilityZones...)
}
func (h coreHost) BaseURL(r *http.Request) string { return h.e.baseURLFor(r) }
func (h coreHost) Region() string                 { return h.e.opts.Region }

// addService registers s; Start calls it before building the routes.
func (e *Emulator) addService(s host.Service) {
	if e.services == nil {
		e.services = map[string]host.Service{}
	}
	e.services[s.Name()] = s
	e.serviceList = append(e.serviceList, s)
}

// serviceRoutes adds every service's routes; a handler gets a host.Request
// built from the core's request after authentication and negotiation.
func (e *Emulator) serviceRoutes(add addFunc) {
	for _, s := range e.serviceList {
		for _, rt := range s.Routes() {
			h := rt.H
			add(rt.Method, s.Name(), rt.Template, rt.Public, func(_ *Emulator, q *req) {
				hq := &host.Request{W: q.w, R: q.r, Params: q.params, MV: q.mv, RequestID: q.requestID, Template: q.tmpl}
				if q.tok != nil {
					hq.ProjectID, hq.UserID = q.tok.ProjectID, q.tok.UserID
				}
				h(hq)
			})
		}
	}
}

// projectSegment reports whether segs[2] is a project id in a service's
// URL (/<service>/<version>/<project_id>/...).
func (e *Emulator) projectSegment(segs []string) bool {
	s := e.services[segs[0]]
	return s != nil && !s.TopCollections()[segs[2]]
}

func (e *Emulator) serviceCatalog(base, projectID string, eps func(url string) []any) []any {
	var out []any
	for _, s := range e.serviceList {
		for _, c := range s.Catalog(base, projectID) {
			out = append(out, map[string]any{"id": c.ID, "type": c.Type, "name": c.Name, "endpoints": eps(c.URL)})
		}
	}
	return out
}

// serviceLatency merges the services' latencies in profile into m.
func (e *Emulator) serviceLatency(profile string, m map[string]time.Duration) {
	for _, s := range e.serviceList {
		for op, d := range s.Latency(profile) {
			m[op] = d
		}
	}
}

func serviceStateFile(dir, name string) string { return filepath.Join(dir, name+".json") }

func (e *Emulator) saveServices() error {
	for _, s := range e.serviceList {
		b, err := s.SaveState()
		if err != nil {
			return fmt.Errorf("%s state: %w", s.Name(), err)
		}
		tmp := serviceStateFile(e.opts.StateDir, s.Name()) + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, serviceStateFile(e.opts.StateDir, s.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (e *Emulator) loadServices() error {
	for _, s := range e.serviceList {
		b, err := os.ReadFile(serviceStateFile(e.opts.StateDir, s.Name()))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.LoadState(b); err != nil {
			return fmt.Errorf("%s state: %w", s.Name(), err)
		}
	}
	return nil
}

func (e *Emulator) closeServices() {
	for _, s := range e.serviceList {
		s.Close()
	}
	klog.V(4).InfoS("emulator services closed", "count", len(e.serviceList))
}

// Manila returns the emulated Manila (test hooks: share types, quotas,
// held access rules, share directories), or nil when Options.Manila
// disabled it.
func (e *Emulator) Manila() *manila.Service { return e.manila }

// ShareDir returns the directory that holds a Manila share's data (what
// node tests bind-mount where a node would mount the export), and whether
// the share exists.
func (e *Emulator) ShareDir(shareID string) (string, bool) {
	if e.manila == nil {
		return "", false
	}
	return e.manila.ShareDir(shareID)
}

// ShareDirByExport is ShareDir for an export location path, as the node
// service receives it ("127.0.0.1:/volumes/_nogroup/..." for NFS,
// "127.0.0.1:6789:/volumes/_nogroup/..." for CephFS).
func (e *Emulator) ShareDirByExport(path string) (string, bool) {
	if e.manila == nil {
		return "", false
	}
	return e.manila.ShareDirByExport(path)
}
