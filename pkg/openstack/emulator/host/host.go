// Package host is the contract between the emulator's core and an emulated
// OpenStack service that lives in a package of its own (Manila, in
// ../manila). The core owns what every service shares: the HTTP front and
// routing, Keystone tokens and the project check, microversion
// negotiation, fault injection, latency profiles with jitter, request ids,
// call counters and persistence. A service brings its routes, its
// microversion rule, its catalog entries, its latency figures and its own
// state, and calls back into the core only through Host.
//
// Cinder and Nova still live in the core package; they could move behind
// this interface the same way (docs/emulator.md).
package host

import (
	"net/http"
	"time"
)

// Request is one authenticated API call as a service handler sees it.
type Request struct {
	W      http.ResponseWriter
	R      *http.Request
	Params map[string]string // path parameters by template name
	// ProjectID and UserID come from the caller's Keystone token.
	ProjectID, UserID string
	// MV is the negotiated microversion (zero for public routes).
	MV        Microversion
	RequestID string
	Template  string // the route template, as Counters reports it
}

// P returns the path parameter name.
func (q *Request) P(name string) string { return q.Params[name] }

// Handler serves one route.
type Handler func(q *Request)

// Route is one method and path template of a service, e.g.
// "/share/v2/{project_id}/shares/{share_id}". The core matches templates
// with the {project_id} segment removed, so a URL with the project id and
// one without (Manila 2.60+) reach the same handler.
type Route struct {
	Method   string
	Template string
	// Public routes need no token and get no microversion (version
	// documents).
	Public bool
	H      Handler
}

// CatalogEntry is one service of the Keystone catalog; the core adds the
// public, internal and admin endpoints and the region.
type CatalogEntry struct {
	ID, Type, Name, URL string
}

// Service is an emulated OpenStack service.
type Service interface {
	// Name is the first path segment of every route ("share").
	Name() string
	// Version says how the service reads its microversion header.
	Version() VersionRule
	Routes() []Route
	// TopCollections are the segments that may directly follow
	// /<name>/<version>/; any other segment there is a project id.
	TopCollections() map[string]bool
	Catalog(base, projectID string) []CatalogEntry
	// Latency returns the service's operation latencies in a profile
	// ("fast", "realistic", "bench"); its keys are the service's
	// operation names, accepted by Options.Latency and SetLatency.
	Latency(profile string) map[string]time.Duration
	// FaultsChanged is told about every SetFaults, so operations held by
	// a fault can resume when it is cleared.
	FaultsChanged(f Faults)
	// SaveState and LoadState persist the service's store (StateDir).
	// LoadState finishes operations that were in flight.
	SaveState() ([]byte, error)
	LoadState(b []byte) error
	// Close ends the service's background work and removes nothing the
	// core's DataDir policy keeps.
	Close()
}

// Host is what the core offers a service.
type Host interface {
	// Later runs fn after op's latency (times fraction, with the seeded
	// +-20% jitter), off the request goroutine, unless the emulator
	// closes first. fn takes the service's own lock and re-checks state.
	Later(op string, fraction float64, fn func())
	// Chance returns true with probability p from the seeded generator.
	Chance(p float64) bool
	// Faults returns the fault settings in force.
	Faults() Faults
	// MarkDirty asks for the state to be persisted soon.
	MarkDirty()
	// DataDir is the directory for resource data (files, directories).
	DataDir() string
	// AvailabilityZones lists the cloud's zones, the default first.
	AvailabilityZones() []string
	// BaseURL is the URL the client used to reach the emulator.
	BaseURL(r *http.Request) string
	// Region is the catalog's region.
	Region() string
}
