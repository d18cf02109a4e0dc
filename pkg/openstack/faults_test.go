package openstack

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// TestRetriesUnderInjected500And503: reads always succeed through retries;
// creates are retried on a 503, and after a 500 (the service may have
// acted) only once a lookup by name has shown no volume was made; no
// create leaves a volume behind or makes two.
func TestRetriesUnderInjected500And503(t *testing.T) {
	e := startEmulator(t, emulator.Options{Seed: 7})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 120*time.Second)
	if _, err := c.GetLimits(ctx); err != nil { // connect before the faults
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{ErrorRate: 0.3})
	for i := 0; i < 30; i++ {
		if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
			t.Fatalf("read %d failed despite retries: %v", i, err)
		}
	}
	created, unavailable := 0, 0
	for i := 0; i < 30; i++ {
		_, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: fmt.Sprintf("f-%d", i), SizeGiB: 1})
		switch {
		case err == nil:
			created++
		case KindOf(err) == KindUnavailable && err.(*Error).StatusCode == 500:
			unavailable++
			if err.(*Error).RequestID == "" {
				t.Errorf("error without request id: %v", err)
			}
		default:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	e.SetFaults(emulator.Faults{})
	if got := len(e.Volumes()); got != created {
		t.Errorf("emulator holds %d volumes, %d creates succeeded", got, created)
	}
	retries := rec.count(func(r *recorder) int { return r.retries["5xx"] })
	posts := e.Counters()["POST /volume/v3/{project_id}/volumes"]
	t.Logf("ErrorRate 0.3: 30 reads all succeeded; creates: %d ok, %d failed on 500 three times; %d retries; %d POSTs", created, unavailable, retries, posts)
	if retries == 0 {
		t.Error("expected 5xx retries")
	}
	if posts <= 30 {
		t.Errorf("%d create POSTs for 30 creates: no create was sent again after a 500 or 503", posts)
	}
	if created < 25 {
		t.Errorf("only %d of 30 creates succeeded: a create must be sent again once a lookup shows a 500 made nothing", created)
	}
}

func TestRateLimited429HonoursRetryAfter(t *testing.T) {
	e := startEmulator(t, emulator.Options{Seed: 3})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 120*time.Second)
	if _, err := c.GetLimits(ctx); err != nil {
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{RateLimitRate: 0.3, RetryAfter: time.Second})
	for i := 0; i < 8; i++ {
		if _, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: fmt.Sprintf("rl-%d", i), SizeGiB: 1}); err != nil {
			t.Fatalf("create %d under 429s: %v", i, err)
		}
	}
	if got := rec.count(func(r *recorder) int { return r.retries["429"] }); got == 0 {
		t.Error("no 429 retry observed")
	}
	if got := len(e.Volumes()); got != 8 {
		t.Errorf("%d volumes after 8 creates retried on 429", got)
	}

	t.Run("Retry-After beyond the deadline returns KindRateLimited at once", func(t *testing.T) {
		e.SetFaults(emulator.Faults{RateLimitRate: 1, RetryAfter: 30 * time.Second})
		short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.ListVolumes(short, ListOpts{})
		if KindOf(err) != KindRateLimited || err.(*Error).RetryAfter != 30*time.Second {
			t.Errorf("err = %#v", err)
		}
		if short.Err() != nil {
			t.Error("the call slept to the deadline instead of giving up")
		}
	})
}

// TestClientSideRateLimitKeepsUnderServerLimit: with the emulator limiting
// a project to 10 requests a second and our bucket at 8, no 429 comes back.
func TestClientSideRateLimitKeepsUnderServerLimit(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1,
		RateLimits: map[string]RateLimit{"volumev3": {QPS: 8, Burst: 1}}})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 120*time.Second)
	if _, err := c.GetLimits(ctx); err != nil {
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{RateLimitRPS: 10})
	for i := 0; i < 25; i++ {
		if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.count(func(r *recorder) int { return r.statuses[429] }); got != 0 {
		t.Errorf("%d responses were 429 despite the client-side limit", got)
	}
	if got := rec.count(func(r *recorder) int { return r.rateWaits }); got == 0 {
		t.Error("the limiter never made a call wait")
	}
}
