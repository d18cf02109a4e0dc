package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/util/backoff"
)

// Source names accepted in [Metadata] search-order, as in the reference
// plugin's cloud.conf.
const (
	SourceConfigDrive     = "configDrive"
	SourceMetadataService = "metadataService"

	// DefaultSearchOrder prefers the config drive: it needs no network,
	// which matters on nodes whose pod network is not up yet.
	DefaultSearchOrder = SourceConfigDrive + "," + SourceMetadataService

	// DefaultURL is the metadata service document for the newest version.
	DefaultURL = "http://169.254.169.254/openstack/latest/meta_data.json"

	// DefaultRequestTimeout bounds one metadata-service request. The service
	// answers from the local Neutron proxy in milliseconds; 10 s leaves room
	// for a loaded nova-api without hanging NodeGetInfo on a black hole.
	DefaultRequestTimeout = 10 * time.Second
)

// Provider gives the node the instance identity and the tagged devices.
type Provider interface {
	// Get returns the instance metadata. The first success is cached for
	// the life of the process (the server UUID and AZ never change). Until
	// then it retries every source with backoff until ctx is done.
	Get(ctx context.Context) (*Metadata, error)
	// Devices returns the current "devices" list, uncached: it changes with
	// every attachment. It makes one attempt.
	Devices(ctx context.Context) ([]Device, error)
}

// Options configure New. Zero values take the defaults.
type Options struct {
	// SearchOrder is the [Metadata] search-order value, a comma list of
	// configDrive and metadataService.
	SearchOrder string
	// URL of meta_data.json on the metadata service.
	URL string
	// RequestTimeout bounds each metadata-service request.
	RequestTimeout time.Duration
	// DevRoot is where /dev/disk/by-label/config-2 is looked up.
	DevRoot string
	// ConfigDriveDir, when set, is an already mounted or unpacked config
	// drive tree read in place of mounting the config-2 device.
	ConfigDriveDir string
}

// Client reads metadata from the sources in search order.
type Client struct {
	sources []source
	// live is the source Devices reads: the metadata service when it is in
	// the search order, because a config drive is written once at boot and
	// never lists later attachments.
	live source

	mu     sync.Mutex
	cached *Metadata
}

// source is one place metadata can come from.
type source interface {
	name() string
	read(ctx context.Context) ([]byte, error)
}

var _ Provider = (*Client)(nil)

// ParseSearchOrder validates a search-order value. Empty means the default.
func ParseSearchOrder(order string) ([]string, error) {
	if strings.TrimSpace(order) == "" {
		order = DefaultSearchOrder
	}
	var names []string
	for part := range strings.SplitSeq(order, ",") {
		name := strings.TrimSpace(part)
		switch name {
		case SourceConfigDrive, SourceMetadataService:
		case "":
			continue
		default:
			return nil, fmt.Errorf("metadata search-order: unknown source %q (want %s or %s)", name, SourceConfigDrive, SourceMetadataService)
		}
		if slices.Contains(names, name) {
			return nil, fmt.Errorf("metadata search-order: %q listed twice", name)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, errors.New("metadata search-order names no source")
	}
	return names, nil
}

// New builds a Client. It does no I/O.
func New(opts Options) (*Client, error) {
	order, err := ParseSearchOrder(opts.SearchOrder)
	if err != nil {
		return nil, err
	}
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.DevRoot == "" {
		opts.DevRoot = "/dev"
	}
	c := &Client{}
	for _, name := range order {
		var s source
		switch name {
		case SourceConfigDrive:
			s = newConfigDrive(opts.DevRoot, opts.ConfigDriveDir)
		case SourceMetadataService:
			s = newMetadataService(opts.URL, opts.RequestTimeout)
			c.live = s
		}
		c.sources = append(c.sources, s)
	}
	if c.live == nil {
		c.live = c.sources[0]
	}
	return c, nil
}

// Retry timing for Get: a first retry after 200 ms catches a metadata proxy
// that is still starting; the cap of 10 s keeps a node that boots without
// network from hammering the service while still registering within seconds
// of it coming up (reference plugin issue #2622).
var retryBackoff = backoff.Exponential{First: 200 * time.Millisecond, Max: 10 * time.Second}

// Get implements Provider.
func (c *Client) Get(ctx context.Context) (*Metadata, error) {
	// The lock is not held while reading, so a caller with a short deadline
	// is never stuck behind another caller's retries.
	c.mu.Lock()
	cached := c.cached
	c.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	for attempt := 1; ; attempt++ {
		md, err := c.readOnce(ctx)
		if err == nil {
			c.mu.Lock()
			c.cached = md
			c.mu.Unlock()
			return md, nil
		}
		delay := retryBackoff.Delay(attempt)
		klog.V(2).InfoS("Instance metadata not available yet", "attempt", attempt, "retryIn", delay, "err", err)
		if sleepErr := backoff.Sleep(ctx, delay); sleepErr != nil {
			return nil, fmt.Errorf("instance metadata not available after %d attempts: %w (last error: %w)", attempt, sleepErr, err)
		}
	}
}

// readOnce tries each source in order and returns the first usable document.
func (c *Client) readOnce(ctx context.Context) (*Metadata, error) {
	var errs []error
	for _, s := range c.sources {
		data, err := s.read(ctx)
		if err == nil {
			var md *Metadata
			if md, err = Parse(data); err == nil {
				return md, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.name(), err))
	}
	return nil, errors.Join(errs...)
}

// Devices implements Provider.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	data, err := c.live.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.live.name(), err)
	}
	md, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.live.name(), err)
	}
	return md.Devices, nil
}
