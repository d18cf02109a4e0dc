package openstack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"sort"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/config"
)

// Options tune a CloudSet. The zero value is usable.
type Options struct {
	// UserAgent holds extra User-Agent strings (the --user-agent flag),
	// sent after "cinder-csi/<version>".
	UserAgent []string
	// Observer receives metrics hooks; nil means none.
	Observer Observer
	// RateLimits is a client-side token bucket per service, keyed by
	// "identity", "volumev3", "compute" or "sharev2", or AllServices for one bucket
	// every request of the cloud takes a token from (besides its
	// service's). A missing key means no limit.
	RateLimits map[string]RateLimit
	// HTTPTimeout bounds one HTTP request (not a wait). Default 60 s.
	HTTPTimeout time.Duration
	// CloudNames selects the sections to load (the --cloud-name flag).
	// Empty means every [Global] and [Global "name"] section.
	CloudNames []string
	// ReloadInterval is how often NewClouds checks the config files for a
	// change. Default 5 s; negative disables the watch (a 401 still
	// triggers a re-read).
	ReloadInterval time.Duration
}

// defaultHTTPTimeout bounds one request. Cinder and Nova answer every call
// we make in well under a second; 60 s only catches a hung connection.
const defaultHTTPTimeout = 60 * time.Second

// defaultReloadInterval: a Secret mounted into a pod is updated by the
// kubelet within about a minute; checking every 5 s costs a stat and a
// small read, and adds little to that delay.
const defaultReloadInterval = 5 * time.Second

func (o *Options) observer() Observer {
	if o == nil || o.Observer == nil {
		return nopObserver{}
	}
	return o.Observer
}

func (o *Options) httpTimeout() time.Duration {
	if o == nil || o.HTTPTimeout <= 0 {
		return defaultHTTPTimeout
	}
	return o.HTTPTimeout
}

// CloudSet is the Clouds implementation: one Cloud per configured section,
// swapped underneath when the config files change.
type CloudSet struct {
	opts  Options
	files []string

	mu     sync.RWMutex
	cfg    *config.Config
	clouds map[string]*cloud
	hash   [32]byte

	reloadMu sync.Mutex // one re-read at a time
}

var _ Clouds = (*CloudSet)(nil)

// NewClouds reads the cloud.conf files (merged in order), validates the
// selected sections, and returns the clouds. It authenticates each cloud
// once to fail early on a wrong URL or credentials; a cloud that cannot be
// reached now is logged and tried again on first use. Until ctx ends it
// watches the files and applies changed credentials without a restart.
func NewClouds(ctx context.Context, files []string, opts Options) (*CloudSet, error) {
	return openClouds(ctx, files, opts, (*cloud).connect)
}

// openClouds is NewClouds with the first connection of each cloud given:
// Cinder's and Nova's endpoints for the Cinder driver, Manila's for the
// Manila driver (share_clouds.go), so neither needs the other's service.
func openClouds(ctx context.Context, files []string, opts Options, probe func(*cloud, context.Context) error) (*CloudSet, error) {
	cfg, hash, err := loadValidated(files, opts.CloudNames)
	if err != nil {
		return nil, err
	}
	s, err := newCloudSet(cfg, files, opts)
	if err != nil {
		return nil, err
	}
	s.hash = hash
	for _, n := range s.Names() {
		c := s.clouds[n]
		if err := probe(c, ctx); err != nil {
			if KindOf(err) == KindForbidden || KindOf(err) == KindConfig || KindOf(err) == KindBadRequest {
				return nil, fmt.Errorf("cloud %s: %w", sectionLabel(n), err)
			}
			klog.ErrorS(err, "Cannot connect to cloud yet; will retry on first use", "cloud", n)
		}
	}
	interval := opts.ReloadInterval
	if interval == 0 {
		interval = defaultReloadInterval
	}
	if interval > 0 && len(files) > 0 {
		go s.watch(ctx, interval)
	}
	return s, nil
}

// NewCloudsFromConfig builds the clouds of an already loaded config without
// touching the network and without watching files; for tests and tools.
func NewCloudsFromConfig(cfg *config.Config, opts Options) (*CloudSet, error) {
	if err := cfg.ValidateClouds(opts.CloudNames...); err != nil {
		return nil, &Error{Kind: KindConfig, Op: "config", Message: err.Error(), Err: err}
	}
	return newCloudSet(cfg, nil, opts)
}

func newCloudSet(cfg *config.Config, files []string, opts Options) (*CloudSet, error) {
	s := &CloudSet{opts: opts, files: files, cfg: cfg, clouds: map[string]*cloud{}}
	for _, n := range selectedNames(cfg, opts.CloudNames) {
		c, err := s.build(n, cfg)
		if err != nil {
			return nil, err
		}
		s.clouds[n] = c
	}
	return s, nil
}

func selectedNames(cfg *config.Config, names []string) []string {
	if len(names) > 0 {
		return names
	}
	return cfg.Names()
}

func (s *CloudSet) build(name string, cfg *config.Config) (*cloud, error) {
	c, err := newCloud(name, cfg.Clouds[name], cfg.BlockStorage, &s.opts)
	if err != nil {
		return nil, err
	}
	if len(s.files) > 0 {
		c.reload = s.reloadNow
	}
	return c, nil
}

// Get returns the cloud for name; "" is [Global].
func (s *CloudSet) Get(name string) (Cloud, error) {
	s.mu.RLock()
	c, ok := s.clouds[name]
	s.mu.RUnlock()
	if !ok {
		return nil, &Error{Kind: KindConfig, Op: "select_cloud", Resource: name,
			Message: fmt.Sprintf("cloud %q is not configured (no [Global %q] section loaded)", name, name)}
	}
	return c, nil
}

// Names returns the configured cloud names, sorted, "" first.
func (s *CloudSet) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.clouds))
	for n := range s.clouds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Config returns the config in use (secrets included: never log it
// except through its String method, which redacts them).
func (s *CloudSet) Config() *config.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

func loadValidated(files []string, names []string) (*config.Config, [32]byte, error) {
	hash, err := hashFiles(files)
	if err != nil {
		return nil, hash, err
	}
	cfg, warns, err := config.Load(files...)
	config.LogWarnings(warns)
	if err != nil {
		return nil, hash, err
	}
	if err := cfg.ValidateClouds(names...); err != nil {
		return nil, hash, err
	}
	return cfg, hash, nil
}

// hashFiles digests the files' content. Content rather than mtime, because
// a Secret volume swaps a symlink and may keep the mtime of the new file.
func hashFiles(files []string) ([32]byte, error) {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return [32]byte{}, fmt.Errorf("cloud config %s: %w", f, err)
		}
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

func (s *CloudSet) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reloadNow(ctx)
		}
	}
}

// reloadNow re-reads the files and applies a change. It reports whether
// any credentials or connection settings changed. A file that fails to
// parse or validate (say, half written) is logged and the old
// configuration kept. It has the signature of a cloud's reload hook; the
// local file reads take no context.
func (s *CloudSet) reloadNow(_ context.Context) bool {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	hash, err := hashFiles(s.files)
	if err != nil {
		klog.ErrorS(err, "Cannot re-read cloud config; keeping the current one")
		return false
	}
	s.mu.RLock()
	same := hash == s.hash
	s.mu.RUnlock()
	if same {
		return false
	}
	cfg, _, err := loadValidated(s.files, s.opts.CloudNames)
	if err != nil {
		klog.ErrorS(err, "Changed cloud config is not valid; keeping the current one")
		return false
	}
	return s.apply(cfg, hash)
}

// apply swaps in a new config. A section whose only change is its secrets
// (password, application credential, trustee password, token) keeps its
// cloud, connection and token; its next re-authentication uses the new
// credentials. Any other change builds a new cloud; calls in flight finish
// on the old one.
func (s *CloudSet) apply(cfg *config.Config, hash [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	next := map[string]*cloud{}
	for _, n := range selectedNames(cfg, s.opts.CloudNames) {
		nc := cfg.Clouds[n]
		old, ok := s.clouds[n]
		switch {
		case ok && reflect.DeepEqual(withoutSources(old.creds.Load()), withoutSources(nc)) &&
			reflect.DeepEqual(old.bs, cfg.BlockStorage):
			next[n] = old
		case ok && sameEndpoint(old.creds.Load(), nc) && reflect.DeepEqual(old.bs, cfg.BlockStorage):
			old.creds.Store(nc)
			next[n] = old
			changed = true
			klog.InfoS("Cloud credentials changed; using them from the next authentication", "cloud", n)
		default:
			c, err := s.build(n, cfg)
			if err != nil {
				klog.ErrorS(err, "Cannot apply the changed cloud config; keeping the current one", "cloud", n)
				if ok {
					next[n] = old
				}
				continue
			}
			next[n] = c
			changed = true
			klog.InfoS("Cloud config changed; new connection", "cloud", n)
		}
	}
	s.clouds = next
	s.cfg = cfg
	s.hash = hash
	return changed
}

func withoutSources(c *config.Cloud) config.Cloud {
	cp := *c
	cp.Sources = nil
	return cp
}

// sameEndpoint reports whether two sections differ only in secrets or in
// which user or credential authenticates, so that the connection, the
// endpoints and the project stay valid.
func sameEndpoint(a, b *config.Cloud) bool {
	return a.AuthURL == b.AuthURL && a.Region == b.Region && a.EndpointType == b.EndpointType &&
		a.CAFile == b.CAFile && a.CertFile == b.CertFile && a.KeyFile == b.KeyFile &&
		a.TLSInsecure == b.TLSInsecure && a.TenantID == b.TenantID && a.TenantName == b.TenantName &&
		a.TenantDomainID == b.TenantDomainID && a.TenantDomainName == b.TenantDomainName
}
