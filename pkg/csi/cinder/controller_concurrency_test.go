package cinder

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// retryLikeSidecar repeats call while it fails with a code the CSI sidecars
// treat as "in progress" or transient, as external-provisioner does, with
// a fresh per-call deadline each time.
func retryLikeSidecar(ctx context.Context, perCall time.Duration, call func(context.Context) error) (attempts int, err error) {
	for {
		attempts++
		cctx, cancel := context.WithTimeout(ctx, perCall)
		err = call(cctx)
		cancel()
		switch status.Code(err) {
		case codes.Aborted, codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted:
		default:
			return attempts, err
		}
		if ctx.Err() != nil {
			return attempts, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestControllerConcurrentCreatesUnderFaultsLeakNothing issues 200
// CreateVolume calls for 100 names (each name twice, concurrently) while
// the cloud answers 10% of requests with 500/503 and another 10% with 429,
// retrying like the provisioner; then 100 deletes. At most one volume per
// name may ever exist, and none may be left.
func TestControllerConcurrentCreatesUnderFaultsLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("200 concurrent creates against the emulator; skipped with -short")
	}
	const names = 100
	e := newControllerEnv(t)
	e.warm()
	e.emu.SetFaults(emulator.Faults{ErrorRate: 0.1, RateLimitRate: 0.1, RetryAfter: time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      = map[string]map[string]bool{} // name -> volume ids answered
		failures []error
		attempts int
	)
	start := make(chan struct{})
	for i := range 2 * names {
		name := fmt.Sprintf("pvc-conc-%03d", i%names)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var resp *csi.CreateVolumeResponse
			n, err := retryLikeSidecar(ctx, 20*time.Second, func(c context.Context) error {
				var err error
				resp, err = e.cs.CreateVolume(c, createReq(name, 1))
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			attempts += n
			if err != nil {
				failures = append(failures, fmt.Errorf("%s: %w", name, err))
				return
			}
			if ids[name] == nil {
				ids[name] = map[string]bool{}
			}
			ids[name][resp.Volume.VolumeId] = true
		}()
	}
	close(start)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d creates failed for good, first: %v", len(failures), failures[0])
	}
	for name, set := range ids {
		if len(set) != 1 {
			t.Errorf("name %s answered with %d different volume ids", name, len(set))
		}
	}
	// Nothing is deleted during the create phase, so the emulator holds
	// every volume ever created.
	perName := map[string]int{}
	for _, v := range e.emu.Volumes() {
		perName[v.Name]++
	}
	for name, n := range perName {
		if n > 1 {
			t.Errorf("name %s has %d volumes", name, n)
		}
	}
	if len(perName) != names {
		t.Fatalf("%d names have a volume, want %d", len(perName), names)
	}
	counters := e.emu.Counters()
	t.Logf("create phase: %d RPC attempts for %d calls; %d volume POSTs (faults included), %d API requests in all",
		attempts, 2*names, counters["POST /volume/v3/{project_id}/volumes"], e.emu.TotalCalls())

	var delFailures []error
	for name, set := range ids {
		for id := range set {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := retryLikeSidecar(ctx, 20*time.Second, func(c context.Context) error {
					_, err := e.cs.DeleteVolume(c, &csi.DeleteVolumeRequest{VolumeId: id})
					return err
				})
				if err != nil {
					mu.Lock()
					delFailures = append(delFailures, fmt.Errorf("%s (%s): %w", name, id, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(delFailures) > 0 {
		t.Fatalf("%d deletes failed for good, first: %v", len(delFailures), delFailures[0])
	}
	if left := e.emu.Volumes(); len(left) != 0 {
		t.Fatalf("%d volumes left, first %+v", len(left), left[0])
	}
	if n := e.cs.inFlight.Len(); n != 0 {
		t.Fatalf("%d in-flight keys left", n)
	}
}
