package openstack

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// recorder is an Observer that counts what it sees.
type recorder struct {
	mu        sync.Mutex
	requests  map[string]int // "service op status"
	statuses  map[int]int
	retries   map[string]int // reason
	renewals  int
	waits     map[string]int // outcome
	rateWaits int
}

func newRecorder() *recorder {
	return &recorder{requests: map[string]int{}, statuses: map[int]int{}, retries: map[string]int{}, waits: map[string]int{}}
}

func (r *recorder) ObserveRequest(service, op string, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[service+" "+op]++
	r.statuses[status]++
}

func (r *recorder) ObserveRetry(_, _, reason string) {
	r.mu.Lock()
	r.retries[reason]++
	r.mu.Unlock()
}

func (r *recorder) ObserveRateLimitWait(string, time.Duration) {
	r.mu.Lock()
	r.rateWaits++
	r.mu.Unlock()
}

func (r *recorder) ObserveTokenRenewal(string) {
	r.mu.Lock()
	r.renewals++
	r.mu.Unlock()
}

func (r *recorder) ObserveWait(_ string, _ time.Duration, outcome string) {
	r.mu.Lock()
	r.waits[outcome]++
	r.mu.Unlock()
}

func (r *recorder) count(f func(r *recorder) int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r)
}

func startEmulator(t *testing.T, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	e, err := emulator.Start(opts)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cloud.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rewrite replaces a file the way a Secret volume update does: a new file
// renamed over the old one.
func rewrite(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newSet(t *testing.T, files []string, opts Options) *CloudSet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := NewClouds(ctx, files, opts)
	if err != nil {
		t.Fatalf("NewClouds: %v", err)
	}
	return s
}

func mustGet(t *testing.T, s *CloudSet, name string) *cloud {
	t.Helper()
	c, err := s.Get(name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return c.(*cloud)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func isAvailable(v *Volume) bool { return v.Status == VolumeAvailable }
