package openstack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

func TestWaitEndsOnContextDeadlineWithLastState(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "stuck", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{StuckAttaching: true})
	if _, err := c.AttachVolume(ctx, emulator.DefaultServerID, v.ID, false); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	last, err := c.WaitVolume(short, v.ID, func(v *Volume) bool { return v.Status == VolumeInUse })
	if KindOf(err) != KindTimeout {
		t.Fatalf("err = %v, want KindTimeout", err)
	}
	if last == nil || last.Status != VolumeAttaching {
		t.Fatalf("last observed = %+v, want attaching", last)
	}
	if !strings.Contains(err.Error(), "attaching") {
		t.Errorf("timeout message does not say the state: %v", err)
	}
	if got := rec.count(func(r *recorder) int { return r.waits["timeout"] }); got != 1 {
		t.Errorf("ObserveWait timeout = %d", got)
	}
	e.SetFaults(emulator.Faults{})
}

func TestWaitEndsOnErrorStatusWithUserMessage(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := c.GetLimits(ctx); err != nil {
		t.Fatal(err)
	}
	e.SetFaults(emulator.Faults{VolumeErrorRate: 1})
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "doomed", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	last, err := c.WaitVolume(ctx, v.ID, isAvailable)
	if KindOf(err) != KindErrorState || last == nil || last.Status != VolumeError {
		t.Fatalf("WaitVolume = %+v, %v", last, err)
	}
	m, merr := c.LatestMessage(ctx, v.ID)
	if merr != nil || m == nil {
		t.Fatalf("LatestMessage = %+v, %v", m, merr)
	}
	if !strings.Contains(err.Error(), m.UserMessage) {
		t.Errorf("error %q lacks the user message %q", err, m.UserMessage)
	}
}

// TestBatchedPollSharesRequests is the measurement the issue asks for: 50
// concurrent waits on 50 volumes through the shared poller, against 50
// independent pollers with the same schedule. Both counts come from the
// emulator's request counters.
func TestBatchedPollSharesRequests(t *testing.T) {
	const n = 50
	const createLatency = 2 * time.Second
	e := startEmulator(t, emulator.Options{Latency: map[string]time.Duration{"volume_create": createLatency}})
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 120*time.Second)

	getKey := "GET /volume/v3/{project_id}/volumes/{volume_id}"
	listKey := "GET /volume/v3/{project_id}/volumes/detail"
	run := func(wait func(id string) error) (gets, lists int64) {
		ids := make([]string, n)
		for i := range ids {
			v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: fmt.Sprintf("batch-%d", i), SizeGiB: 1})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = v.ID
		}
		e.ResetCounters()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- wait(id)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		cnt := e.Counters()
		for _, id := range ids {
			if err := c.DeleteVolume(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		return cnt[getKey], cnt[listKey]
	}

	sharedGets, sharedLists := run(func(id string) error {
		_, err := c.WaitVolume(ctx, id, isAvailable)
		return err
	})
	indepGets, indepLists := run(func(id string) error {
		// One poller per volume: what 50 independent polls cost.
		p := poller.New(batchFetch(c.fetchVolume, nil, func(v Volume) string { return v.ID }), volumePollConfig)
		_, _, err := p.Wait(ctx, id, func(r poller.Result[Volume], err error) (bool, error) {
			if err != nil {
				return true, err
			}
			return r.Value.Status == VolumeAvailable, nil
		})
		return err
	})
	shared, indep := sharedGets+sharedLists, indepGets+indepLists
	t.Logf("50 concurrent waits, volumes ready after %s: shared poller %d requests (%d volumes/detail + %d single GETs); 50 independent polls %d requests (%d GETs)",
		createLatency, shared, sharedLists, sharedGets, indep, indepGets)
	if shared*5 > indep {
		t.Errorf("shared poll made %d requests, not far fewer than independent %d", shared, indep)
	}
}
