package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcos "github.com/gophercloud/gophercloud/v2/openstack"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

// cloud implements Cloud for one [Global] section.
type cloud struct {
	name string
	opts *Options
	obs  Observer
	bs   config.BlockStorage

	// creds is the section the next (re)authentication uses. A credential
	// rotation replaces it in place so that in-flight calls survive it.
	creds atomic.Pointer[config.Cloud]
	// reload re-reads the config files after a failed re-authentication
	// and reports whether the credentials changed; nil without files.
	reload func(ctx context.Context) bool

	provider *gophercloud.ProviderClient

	mu        sync.Mutex // guards the connection state below
	authed    bool       // authenticated once; Cinder, Nova and Manila share the token
	connected bool
	volume    *gophercloud.ServiceClient
	compute   *gophercloud.ServiceClient
	features  Features

	// The Manila connection is separate and lazy: a Manila-only cloud has
	// no Cinder, a Cinder-only cloud is never asked for Manila.
	shareMu        sync.Mutex
	shareConnected bool
	share          *gophercloud.ServiceClient
	shareFeats     ShareFeatures
	sharePolls     *sharePollers

	// projectID has its own lock: re-authentication, which sets it, can
	// run inside connect, which holds mu.
	projMu    sync.Mutex
	projectID string

	polls *pollers
	// groupPolls wait on generic volume groups and group snapshots.
	groupPolls *groupPollers
}

// newCloud prepares a cloud; it does not touch the network (see connect).
func newCloud(name string, cc *config.Cloud, bs config.BlockStorage, opts *Options) (*cloud, error) {
	httpClient, err := newHTTPClient(cc, opts)
	if err != nil {
		return nil, err
	}
	provider, err := gcos.NewClient(cc.AuthURL)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(name), Message: "auth-url is not a valid URL"}
	}
	provider.HTTPClient = *httpClient
	provider.UserAgent.Prepend(userAgent(opts.UserAgent)...)
	policy := retryPolicy{obs: opts.observer()}
	provider.RetryFunc = policy.onFailure
	provider.RetryBackoffFunc = policy.onRateLimited
	provider.MaxBackoffRetries = maxAttempts
	c := &cloud{name: name, opts: opts, obs: opts.observer(), bs: bs, provider: provider}
	c.creds.Store(cc)
	c.polls = newPollers(c)
	c.groupPolls = newGroupPollers(c)
	c.sharePolls = newSharePollers(c)
	return c, nil
}

func sectionLabel(name string) string {
	if name == config.SecretsCloudName {
		return "the os-* CSI secrets"
	}
	if name == "" {
		return "[Global]"
	}
	return fmt.Sprintf("[Global %q]", name)
}

// userAgent is "cinder-csi/<version>" followed by the operator's extras;
// gophercloud appends its own.
func userAgent(extra []string) []string {
	return append([]string{"cinder-csi/" + version.Version}, extra...)
}

// newHTTPClient builds the one HTTP client of a cloud: keep-alive
// connections, TLS from ca-file/cert-file/key-file/tls-insecure, and the
// observing, rate-limiting transport.
func newHTTPClient(cc *config.Cloud, opts *Options) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cc.CAFile != "" {
		pem, err := os.ReadFile(cc.CAFile)
		if err != nil {
			return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(cc.Name), Message: "ca-file " + cc.CAFile + ": cannot read"}
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(cc.Name), Message: "ca-file " + cc.CAFile + ": no PEM certificate found"}
		}
		tlsCfg.RootCAs = pool
	}
	if cc.CAData != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(cc.CAData)) {
			return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(cc.Name), Message: "os-certAuthority: no PEM certificate found"}
		}
		tlsCfg.RootCAs = pool
	}
	if cc.CertFile != "" || cc.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cc.CertFile, cc.KeyFile)
		if err != nil {
			// The tls error may quote PEM content; name the files only.
			return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(cc.Name), Message: "cert-file/key-file: cannot load the client certificate pair"}
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if cc.TLSInsecure {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it with tls-insecure
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32, // concurrent CSI calls share the API endpoints
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	limiters := map[string]*tokenBucket{}
	for svc, l := range opts.RateLimits {
		limiters[svc] = newTokenBucket(l)
	}
	return &http.Client{
		Transport: &observingTransport{base: base, obs: opts.observer(), limiters: limiters},
		Timeout:   opts.httpTimeout(),
	}, nil
}

// authOptions turns a cloud section into Keystone v3 auth options.
func authOptions(cc *config.Cloud) *tokens3.AuthOptions {
	userDomainID, userDomainName := cc.UserDomainID, cc.UserDomainName
	if userDomainID == "" && userDomainName == "" {
		userDomainID, userDomainName = cc.DomainID, cc.DomainName
	}
	ao := &tokens3.AuthOptions{IdentityEndpoint: cc.AuthURL}
	setUser := func(id, name, password string) {
		ao.UserID, ao.Password = id, password
		if id == "" {
			ao.Username = name
			ao.DomainID, ao.DomainName = userDomainID, userDomainName
			if ao.DomainID != "" {
				ao.DomainName = "" // gophercloud refuses both
			}
		}
	}
	switch cc.Method() {
	case config.AuthApplicationCredential:
		ao.ApplicationCredentialID = cc.ApplicationCredentialID
		ao.ApplicationCredentialName = cc.ApplicationCredentialName
		ao.ApplicationCredentialSecret = cc.ApplicationCredentialSecret
		if cc.ApplicationCredentialID == "" {
			setUser(cc.UserID, cc.Username, "")
		}
	case config.AuthTrust:
		id, pw := cc.TrusteeID, cc.TrusteePassword
		if id == "" {
			id = cc.UserID
		}
		if pw == "" {
			pw = cc.Password
		}
		setUser(id, cc.Username, pw)
		ao.Scope = tokens3.Scope{TrustID: cc.TrustID}
	case config.AuthToken:
		ao.TokenID = cc.Token
		if cc.TenantID != "" || cc.TenantName != "" {
			ao.Scope = projectScope(cc)
		}
	default:
		setUser(cc.UserID, cc.Username, cc.Password)
		ao.Scope = projectScope(cc)
	}
	return ao
}

// projectScope is the scope a password or token section asks for: the
// project by id, or by name in its domain (the tenant's, else the
// section's, else the user's), or else a domain; none when nothing is set.
func projectScope(cc *config.Cloud) tokens3.Scope {
	switch {
	case cc.TenantID != "":
		return tokens3.Scope{ProjectID: cc.TenantID}
	case cc.TenantName != "":
		dID, dName := cc.TenantDomainID, cc.TenantDomainName
		if dID == "" && dName == "" {
			dID, dName = cc.DomainID, cc.DomainName
		}
		if dID == "" && dName == "" {
			dID, dName = cc.UserDomainID, cc.UserDomainName
		}
		return tokens3.Scope{ProjectName: cc.TenantName, DomainID: dID, DomainName: dName}
	case cc.DomainID != "" || cc.DomainName != "":
		return tokens3.Scope{DomainID: cc.DomainID, DomainName: cc.DomainName}
	}
	return tokens3.Scope{}
}

// authenticate issues a token with the current credentials into target.
func (c *cloud) authenticate(ctx context.Context, target *gophercloud.ProviderClient) error {
	ao := authOptions(c.creds.Load())
	ctx = withCall(ctx, serviceIdentity, "token_issue")
	if err := gcos.AuthenticateV3(ctx, target, ao, gophercloud.EndpointOpts{}); err != nil {
		return err
	}
	c.obs.ObserveTokenRenewal(c.name)
	return nil
}

// reauth is the provider's ReauthFunc: on a 401 gophercloud calls it once
// and repeats the request with the new token. It authenticates a throwaway
// copy of the provider, as gophercloud's own does, but with the latest
// credentials; when that fails it re-reads the config files once, since a
// 401 is the first sign of a rotated application credential.
func (c *cloud) reauth(ctx context.Context) error {
	err := c.reauthOnce(ctx)
	if err == nil {
		return nil
	}
	if c.reload != nil && c.reload(ctx) {
		klog.InfoS("Re-authenticating with reloaded credentials", "cloud", c.name)
		return c.reauthOnce(ctx)
	}
	return err
}

func (c *cloud) reauthOnce(ctx context.Context) error {
	tac := *c.provider //nolint:govet // the same copy gophercloud makes for reauthentication
	tac.SetThrowaway(true)
	tac.ReauthFunc = nil
	if err := tac.SetTokenAndAuthResult(nil); err != nil {
		return err
	}
	if err := c.authenticate(ctx, &tac); err != nil {
		return err
	}
	c.provider.CopyTokenFrom(&tac)
	// A rotated application credential may belong to another project.
	if cr, ok := tac.GetAuthResult().(tokens3.CreateResult); ok {
		if p, err := cr.ExtractProject(); err == nil && p != nil {
			c.setProject(p.ID)
		}
	}
	return nil
}

// connect authenticates, finds the Cinder and Nova endpoints and reads
// their version documents, once. A failure is not cached: the next call
// tries again.
func (c *cloud) connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		return nil
	}
	if err := c.authLocked(ctx); err != nil {
		return err
	}
	eo := c.endpointOpts()
	vol, err := gcos.NewBlockStorageV3(c.provider, eo)
	if err != nil {
		return &Error{Kind: KindConfig, Op: "catalog", Resource: sectionLabel(c.name), Message: "no Cinder v3 endpoint in the catalog: " + firstLine(err.Error())}
	}
	comp, err := gcos.NewComputeV2(c.provider, eo)
	if err != nil {
		return &Error{Kind: KindConfig, Op: "catalog", Resource: sectionLabel(c.name), Message: "no Nova endpoint in the catalog: " + firstLine(err.Error())}
	}
	feats, err := discoverFeatures(ctx, c.provider, vol.Endpoint, comp.Endpoint, c.bs.IgnoreVolumeMicroversion)
	if err != nil {
		return err
	}
	c.volume, c.compute, c.features = vol, comp, feats
	c.connected = true
	klog.V(2).InfoS("Connected to OpenStack", "cloud", c.name, "cinderMicroversion", feats.CinderMicroversion,
		"novaMicroversion", feats.NovaMicroversion, "project", c.project())
	return nil
}

// authLocked authenticates once per cloud; c.mu must be held. Every
// service client of the cloud shares the provider and so its token.
func (c *cloud) authLocked(ctx context.Context) error {
	if c.authed {
		return nil
	}
	if err := c.authenticate(ctx, c.provider); err != nil {
		return authError(classify(err, "authenticate", sectionLabel(c.name)))
	}
	c.provider.ReauthFunc = c.reauth
	if cr, ok := c.provider.GetAuthResult().(tokens3.CreateResult); ok {
		if p, err := cr.ExtractProject(); err == nil && p != nil {
			c.setProject(p.ID)
		}
	} else if gr, ok := c.provider.GetAuthResult().(tokens3.GetResult); ok {
		if p, err := gr.ExtractProject(); err == nil && p != nil {
			c.setProject(p.ID)
		}
	}
	c.authed = true
	return nil
}

// ensureAuth authenticates if no service has yet.
func (c *cloud) ensureAuth(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authLocked(ctx)
}

func (c *cloud) endpointOpts() gophercloud.EndpointOpts {
	cc := c.creds.Load()
	return gophercloud.EndpointOpts{Region: cc.Region, Availability: availability(cc.EndpointType)}
}

// authError makes a 404 to a token request a configuration problem: the
// auth-url path is not Keystone's token API, which no retry fixes.
func authError(err error) error {
	var oe *Error
	if errors.As(err, &oe) && oe.Kind == KindNotFound {
		oe.Kind = KindConfig
		oe.Message = "the token request got 404; is auth-url Keystone's v3 endpoint? " + oe.Message
	}
	return err
}

func availability(endpointType string) gophercloud.Availability {
	switch strings.TrimSuffix(strings.ToLower(endpointType), "url") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

// volumeClient returns a copy of the Cinder client at the cloud's chosen
// microversion. Each call gets its own copy: setting Microversion on the
// shared client would race with concurrent calls.
func (c *cloud) volumeClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	sc := *c.volume
	mv := c.features.CinderMicroversion
	c.mu.Unlock()
	if mv != baseCinderMicroversion {
		sc.Microversion = mv
	}
	return &sc, nil
}

// computeClient returns a copy of the Nova client at microversion mv (""
// for the base 2.1).
func (c *cloud) computeClient(ctx context.Context, mv string) (*gophercloud.ServiceClient, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	sc := *c.compute
	c.mu.Unlock()
	sc.Microversion = mv
	return &sc, nil
}

func (c *cloud) Features() Features {
	c.mu.Lock()
	connected := c.connected
	f := c.features
	c.mu.Unlock()
	if connected {
		return f
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.httpTimeout())
	defer cancel()
	if err := c.connect(ctx); err != nil {
		klog.V(2).InfoS("Features unknown: cannot connect", "cloud", c.name, "err", err)
		return Features{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.features
}

var _ Cloud = (*cloud)(nil)

func (c *cloud) setProject(id string) {
	c.projMu.Lock()
	c.projectID = id
	c.projMu.Unlock()
}

func (c *cloud) project() string {
	c.projMu.Lock()
	defer c.projMu.Unlock()
	return c.projectID
}
