package openstack

import (
	"context"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/config"
)

// ShareCloudSet implements ShareClouds: a cloud built from a request's
// os-* secrets (the reference Manila plugin's way), cached by a digest of
// them, or else a cloud.conf section chosen by secrets["cloud"] as for
// Cinder.
type ShareCloudSet struct {
	opts Options
	base *CloudSet // cloud.conf clouds; nil when the driver runs on secrets only

	mu    sync.Mutex
	cache map[[32]byte]*secretsCloud
}

// secretsCloud is one cache entry. Its lock is held while the cloud is
// first connected, so concurrent requests with the same new secrets
// authenticate once.
type secretsCloud struct {
	mu    sync.Mutex
	cloud *cloud
	used  time.Time
}

// maxSecretsClouds bounds the cache: each entry keeps a token and a
// connection pool. A cluster has a handful of Manila Secrets (one per
// StorageClass at most); 32 leaves room for rotations, whose superseded
// entries age out as the least recently used.
const maxSecretsClouds = 32

var _ ShareClouds = (*ShareCloudSet)(nil)

// NewShareClouds is NewClouds for the Manila driver. files may be empty:
// then every request must bring os-* secrets. Each configured section is
// connected to Manila once, so wrong credentials or a cloud without a
// sharev2 endpoint fail here; a Cinder or Nova endpoint is not needed.
func NewShareClouds(ctx context.Context, files []string, opts Options) (*ShareCloudSet, error) {
	s := &ShareCloudSet{opts: opts, cache: map[[32]byte]*secretsCloud{}}
	if len(files) == 0 {
		return s, nil
	}
	base, err := openClouds(ctx, files, opts, (*cloud).connectShare)
	if err != nil {
		return nil, err
	}
	s.base = base
	return s, nil
}

// NewShareCloudsFrom serves the cloud.conf path from an existing set (nil
// for secrets only), without touching the network; for tests and tools.
func NewShareCloudsFrom(base *CloudSet, opts Options) *ShareCloudSet {
	return &ShareCloudSet{opts: opts, base: base, cache: map[[32]byte]*secretsCloud{}}
}

// ForSecrets returns the cloud a request's secrets select.
func (s *ShareCloudSet) ForSecrets(ctx context.Context, secrets map[string]string) (ShareCloud, error) {
	if !config.HasSecretCredentials(secrets) {
		if s.base == nil {
			return nil, &Error{Kind: KindConfig, Op: "select_cloud",
				Message: "the request's secrets hold no os-* credentials (os-authURL, os-userName, os-password, ...) and no cloud config is loaded (--cloud-config)"}
		}
		c, err := s.base.Get(secrets["cloud"])
		if err != nil {
			return nil, err
		}
		return c.(*cloud), nil
	}
	return s.fromSecrets(ctx, secrets)
}

func (s *ShareCloudSet) fromSecrets(ctx context.Context, secrets map[string]string) (ShareCloud, error) {
	digest := config.SecretsDigest(secrets)
	s.mu.Lock()
	e := s.cache[digest]
	if e == nil {
		e = &secretsCloud{}
		s.cache[digest] = e
		s.evictLocked(digest)
	}
	e.used = time.Now()
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cloud != nil {
		return e.cloud, nil
	}
	c, err := s.buildFromSecrets(ctx, secrets)
	if err != nil {
		s.mu.Lock()
		if s.cache[digest] == e {
			delete(s.cache, digest) // not cached: the next request tries again
		}
		s.mu.Unlock()
		return nil, err
	}
	e.cloud = c
	return c, nil
}

// buildFromSecrets validates the secrets and connects to Manila with
// them, so a wrong password is reported on the request that brought it.
func (s *ShareCloudSet) buildFromSecrets(ctx context.Context, secrets map[string]string) (*cloud, error) {
	cc, err := config.FromSecrets(secrets)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "config", Resource: sectionLabel(config.SecretsCloudName), Message: err.Error()}
	}
	c, err := newCloud(config.SecretsCloudName, cc, config.BlockStorage{}, &s.opts)
	if err != nil {
		return nil, err
	}
	if err := c.connectShare(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// evictLocked drops the least recently used entries beyond
// maxSecretsClouds, never keep. s.mu must be held.
func (s *ShareCloudSet) evictLocked(keep [32]byte) {
	for len(s.cache) > maxSecretsClouds {
		var oldest [32]byte
		var oldestAt time.Time
		found := false
		for d, e := range s.cache {
			if d == keep {
				continue
			}
			if !found || e.used.Before(oldestAt) {
				oldest, oldestAt, found = d, e.used, true
			}
		}
		if !found {
			return
		}
		delete(s.cache, oldest)
	}
}

// Base returns the cloud.conf clouds, nil when there are none.
func (s *ShareCloudSet) Base() *CloudSet { return s.base }
