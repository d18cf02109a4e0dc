// Package emulator is an in-process OpenStack (Keystone v3, Cinder v3,
// Nova v2.1, Manila v2, metadata service) that gophercloud v2 talks to
// unmodified. Manila lives in package manila behind package host's
// service contract. It is
// the test bed for the driver and the cloud behind `make demo`.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

// ServerSpec describes one Nova server (a Kubernetes node).
type ServerSpec struct {
	ID, Name, AZ string
	// Local: attachments to this server are hot-plugged on this host.
	Local bool
	// Guest: attachments to this server are hot-plugged into this QEMU
	// guest (VM hot-plug mode, guest.go).
	Guest *GuestSpec `json:"guest,omitempty"`
}

// Options configure an Emulator. Zero values take the documented defaults.
type Options struct {
	Addr              string // default "127.0.0.1:0"
	Region            string // default "RegionOne"
	Servers           []ServerSpec
	AvailabilityZones []string // default ["nova"]
	DevRoot           string   // hot-plug links go under DevRoot; "" disables hot-plug
	SysRoot           string   // fake sysfs: SysRoot/block/<vdX>/{serial,size,dev}
	DataDir           string   // sparse files with volume bytes; default a temp dir removed on Close
	StateDir          string   // optional persistence of the in-memory state
	TokenTTL          time.Duration
	Profile           string // "fast" (default), "realistic" (the rig's measured latencies) or "bench" (issue 10's fixed latencies)
	Latency           map[string]time.Duration
	// MaxCinderMicroversion defaults to "3.70".
	MaxCinderMicroversion string
	// MaxNovaMicroversion defaults to "2.96".
	MaxNovaMicroversion                                        string
	QuotaGigabytes, QuotaVolumes, QuotaSnapshots, QuotaBackups int // defaults 1000,100,100,100; -1 unlimited
	// MaxDevicesPerServer counts the root disk, like Nova's device letters; default 26.
	MaxDevicesPerServer int
	Seed                int64
	// Faults applied from the start; SetFaults changes them later.
	Faults Faults
	// Manila configures the shared file systems service (on unless
	// Manila.Disabled).
	Manila manila.Options
}

// DefaultServerID is the fixed UUID of the default local server "node-1".
const DefaultServerID = "6b1b6a32-3f5e-4c6b-9f0a-0c1d2e3f4a51"

// Emulator is a running fake cloud.
type Emulator struct {
	opts     Options
	listener net.Listener
	srv      *http.Server
	baseURL  string
	routes   []*route

	mu sync.Mutex // guards st and everything it points to
	st *state

	maxCinder, maxNova microversion

	faultMu   sync.Mutex
	faults    Faults
	rng       *rand.Rand
	buckets   map[string]*tokenBucket
	latency   map[string]time.Duration
	countMu   sync.Mutex
	counters  map[string]int64
	total     atomic.Int64
	hotplugMu sync.Mutex
	// guestLocks holds a *sync.Mutex per guest QMP socket.
	guestLocks sync.Map
	// guestDetachTimeout overrides guestDetachTimeout (tests).
	guestDetachTimeout time.Duration

	ownDataDir bool
	done       chan struct{}
	wg         sync.WaitGroup
	closed     atomic.Bool
	closeOnce  sync.Once
	dirty      atomic.Bool

	// Services in packages of their own, by first path segment.
	services    map[string]host.Service
	serviceList []host.Service
	manila      *manila.Service
}

// Start builds the cloud and listens on loopback.
func Start(opts Options) (*Emulator, error) {
	if err := applyDefaults(&opts); err != nil {
		return nil, err
	}
	e := &Emulator{
		opts:     opts,
		st:       newState(),
		rng:      rand.New(rand.NewSource(opts.Seed)),
		buckets:  map[string]*tokenBucket{},
		counters: map[string]int64{},
		done:     make(chan struct{}),
	}
	if err := e.configure(); err != nil {
		return nil, err
	}
	if err := e.makeDataDir(); err != nil {
		return nil, err
	}

	var err error
	loaded := false
	if e.opts.StateDir != "" {
		if loaded, err = e.loadState(); err != nil {
			return nil, err
		}
		if err := e.loadServices(); err != nil {
			return nil, err
		}
	}
	if !loaded {
		e.seed()
	}
	e.routes = e.buildRoutes()

	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		e.cleanupDirs()
		return nil, fmt.Errorf("emulator: listen %s: %w", opts.Addr, err)
	}
	e.listener = l
	e.baseURL = "http://" + l.Addr().String()
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "emulator server stopped")
		}
	}()
	if loaded {
		e.replugAfterLoad()
	}
	if e.opts.StateDir != "" {
		e.wg.Add(1)
		go e.persistLoop()
	}
	klog.V(2).InfoS("OpenStack emulator started", "url", e.baseURL)
	return e, nil
}

// configure reads the microversion caps, the faults, Manila and the
// latencies from e.opts.
func (e *Emulator) configure() error {
	opts := e.opts
	var err error
	if e.maxCinder, err = parseMicroversion(opts.MaxCinderMicroversion); err != nil || e.maxCinder.Major != 3 {
		return fmt.Errorf("emulator: bad MaxCinderMicroversion %q", opts.MaxCinderMicroversion)
	}
	if e.maxNova, err = parseMicroversion(opts.MaxNovaMicroversion); err != nil || e.maxNova.Major != 2 {
		return fmt.Errorf("emulator: bad MaxNovaMicroversion %q", opts.MaxNovaMicroversion)
	}
	e.faults = normalizeFaults(opts.Faults)
	if !opts.Manila.Disabled {
		if e.manila, err = manila.New(coreHost{e}, opts.Manila); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
		e.addService(e.manila)
	}
	e.latency = profileLatency(opts.Profile)
	e.serviceLatency(opts.Profile, e.latency)
	for k, v := range opts.Latency {
		if _, ok := e.latency[k]; !ok {
			return fmt.Errorf("emulator: unknown latency op %q", k)
		}
		e.latency[k] = v
	}
	return nil
}

// makeDataDir settles where the volume files live (DataDir, else
// <StateDir>/data, else a temporary directory removed on Close) and
// creates it.
func (e *Emulator) makeDataDir() error {
	if e.opts.DataDir == "" {
		if e.opts.StateDir != "" {
			e.opts.DataDir = e.opts.StateDir + "/data"
		} else {
			d, err := os.MkdirTemp("", "openstack-emulator-data-")
			if err != nil {
				return err
			}
			e.opts.DataDir = d
			e.ownDataDir = true
		}
	}
	return os.MkdirAll(e.opts.DataDir, 0o755)
}

// orDefault sets *p to def when it holds the zero value.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func applyDefaults(o *Options) error {
	orDefault(&o.Addr, "127.0.0.1:0")
	orDefault(&o.Region, "RegionOne")
	if len(o.AvailabilityZones) == 0 {
		o.AvailabilityZones = []string{"nova"}
	}
	if len(o.Servers) == 0 {
		o.Servers = []ServerSpec{{ID: DefaultServerID, Name: "node-1", AZ: o.AvailabilityZones[0], Local: true}}
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	orDefault(&o.Profile, "fast")
	if o.Profile != "fast" && o.Profile != "realistic" && o.Profile != "bench" {
		return fmt.Errorf("emulator: unknown profile %q (want fast, realistic or bench)", o.Profile)
	}
	orDefault(&o.MaxCinderMicroversion, "3.70")
	orDefault(&o.MaxNovaMicroversion, "2.96")
	orDefault(&o.QuotaGigabytes, 1000)
	orDefault(&o.QuotaVolumes, 100)
	orDefault(&o.QuotaSnapshots, 100)
	orDefault(&o.QuotaBackups, 100)
	if o.MaxDevicesPerServer <= 0 || o.MaxDevicesPerServer > 26 {
		o.MaxDevicesPerServer = 26
	}
	for i := range o.Servers {
		if o.Servers[i].ID == "" {
			o.Servers[i].ID = newUUID()
		}
		orDefault(&o.Servers[i].Name, fmt.Sprintf("node-%d", i+1))
		orDefault(&o.Servers[i].AZ, o.AvailabilityZones[0])
	}
	return nil
}

// Fixed identifiers keep cloud.conf files and persisted state stable across runs.
const (
	defaultDomainID = "default"
	demoProjectID   = "4b1d0c5f2e7a4d3c9b8a7f6e5d4c3b2a"
	secondProjectID = "9e8d7c6b5a4f4e3d8c2b1a0f9e8d7c6b"
	demoUserID      = "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"
	secondUserID    = "6c5b4a3f2e1d40c9b8a7f6e5d4c3b2a1"
)

func (e *Emulator) seed() {
	s := e.st
	s.Domains[defaultDomainID] = &domain{ID: defaultDomainID, Name: "Default"}
	s.Projects[demoProjectID] = &project{ID: demoProjectID, Name: "demo", DomainID: defaultDomainID}
	s.Projects[secondProjectID] = &project{ID: secondProjectID, Name: "second", DomainID: defaultDomainID}
	s.Users[demoUserID] = &user{ID: demoUserID, Name: "demo", DomainID: defaultDomainID, Password: "demo-secret", DefaultProjectID: demoProjectID}
	s.Users[secondUserID] = &user{ID: secondUserID, Name: "second", DomainID: defaultDomainID, Password: "second-secret", DefaultProjectID: secondProjectID}
	now := time.Now().UTC()
	for _, sp := range e.opts.Servers {
		e.addServerLocked(sp, now)
	}
	s.VolumeTypes["3d5a8e31-6f0c-4c1a-b2e4-7d9f0a1b2c3d"] = &volumeType{ID: "3d5a8e31-6f0c-4c1a-b2e4-7d9f0a1b2c3d", Name: "__DEFAULT__", Description: "Default Volume Type", ExtraSpecs: map[string]string{}, IsPublic: true}
	s.VolumeTypes["5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"] = &volumeType{ID: "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", Name: "ssd", ExtraSpecs: map[string]string{"volume_backend_name": "ssd"}, IsPublic: true}
	s.VolumeTypes["7a9b1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d"] = &volumeType{ID: "7a9b1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d", Name: "multiattach", ExtraSpecs: map[string]string{"multiattach": "<is> True"}, IsPublic: true}
	e.seedGroupTypesLocked()
}

func (e *Emulator) addServerLocked(sp ServerSpec, now time.Time) {
	if sp.ID == "" {
		sp.ID = newUUID()
	}
	if sp.AZ == "" {
		sp.AZ = e.opts.AvailabilityZones[0]
	}
	if _, ok := e.st.Servers[sp.ID]; !ok {
		e.st.ServerOrder = append(e.st.ServerOrder, sp.ID)
	}
	e.st.Servers[sp.ID] = &server{ID: sp.ID, Name: sp.Name, AZ: sp.AZ, Local: sp.Local, Guest: sp.Guest, ProjectID: demoProjectID, Status: "ACTIVE", CreatedAt: now}
}

// AddServer registers another Nova server (node).
func (e *Emulator) AddServer(s ServerSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addServerLocked(s, time.Now().UTC())
	e.markDirty()
}

// SetServerTaskState sets a Nova task_state ("" clears it); while set, attach
// and detach on that server answer 409 as Nova does for a busy instance.
func (e *Emulator) SetServerTaskState(serverID, taskState string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.st.Servers[serverID]; ok {
		s.TaskState = taskState
	}
}

// AddVolumeType adds (or replaces the extra specs of) a public volume type.
func (e *Emulator) AddVolumeType(name string, extraSpecs map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	specs := map[string]string{}
	for k, v := range extraSpecs {
		specs[k] = v
	}
	if vt := e.st.volumeTypeByNameOrID(name); vt != nil {
		vt.ExtraSpecs = specs
	} else {
		id := newUUID()
		e.st.VolumeTypes[id] = &volumeType{ID: id, Name: name, ExtraSpecs: specs, IsPublic: true}
	}
	e.markDirty()
}

// URL is the base URL every service hangs off.
func (e *Emulator) URL() string { return e.baseURL }

// AuthURL is the identity v3 endpoint to put in cloud.conf auth-url.
func (e *Emulator) AuthURL() string { return e.baseURL + "/identity/v3" }

// ProjectID returns the id of a built-in project ("demo", "second").
func (e *Emulator) ProjectID(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.st.projectByName(name, ""); p != nil {
		return p.ID
	}
	return ""
}

// CloudConf returns a cloud.conf section for user (password auth), e.g.
// CloudConf("Global", "demo") or CloudConf(`Global "second"`, "second").
func (e *Emulator) CloudConf(section, userName string) string {
	e.mu.Lock()
	u := e.st.userByName(userName, defaultDomainID)
	var pass, projName string
	if u != nil {
		pass = u.Password
		if p := e.st.Projects[u.DefaultProjectID]; p != nil {
			projName = p.Name
		}
	}
	e.mu.Unlock()
	if section == "" {
		section = "Global"
	}
	return fmt.Sprintf("[%s]\nauth-url = %s\nusername = %s\npassword = %s\nuser-domain-name = Default\ntenant-name = %s\ndomain-name = Default\nregion = %s\n",
		section, e.AuthURL(), userName, pass, projName, e.opts.Region)
}

// SetUserPassword changes a user's password (credential rotation tests).
func (e *Emulator) SetUserPassword(userName, newPassword string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.st.userByName(userName, defaultDomainID); u != nil {
		u.Password = newPassword
		e.markDirty()
	}
}

// AddApplicationCredential creates an application credential for user scoped
// to project and returns its id.
func (e *Emulator) AddApplicationCredential(userName, projectName, name, secret string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.st.userByName(userName, defaultDomainID)
	p := e.st.projectByName(projectName, defaultDomainID)
	if u == nil || p == nil {
		return ""
	}
	id := newHexID()
	e.st.AppCredentials[id] = &appCredential{ID: id, Name: name, UserID: u.ID, ProjectID: p.ID, Secret: secret}
	e.markDirty()
	return id
}

// Close stops the server, unplugs every loop device, removes hot-plug links
// and, unless DataDir or StateDir was given, the data files.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		close(e.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e.srv != nil {
			_ = e.srv.Shutdown(ctx)
		}
		e.wg.Wait()
		e.mu.Lock()
		for _, a := range e.st.Attachments {
			if a.LoopDevice != "" {
				e.unplug(a)
			}
		}
		e.unplugGuestsLocked()
		e.mu.Unlock()
		if e.opts.StateDir != "" {
			err = e.saveState()
		}
		e.closeServices()
		e.cleanupDirs()
	})
	return err
}

func (e *Emulator) cleanupDirs() {
	if e.ownDataDir {
		_ = os.RemoveAll(e.opts.DataDir)
	}
}

func sortAttachments(as []*attachment) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].CreatedAt.Equal(as[j].CreatedAt) {
			return as[i].CreatedAt.Before(as[j].CreatedAt)
		}
		return as[i].ID < as[j].ID
	})
}
