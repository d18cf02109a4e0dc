package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// Operation names, in the order of a volume's life.
const (
	OpCreate          = "CreateVolume"
	OpPublish         = "ControllerPublish"
	OpPublishAgain    = "ControllerPublish (already attached)"
	OpSnapshot        = "CreateSnapshot"
	OpExpand          = "ControllerExpand"
	OpUnpublish       = "ControllerUnpublish"
	OpDeleteSnapshot  = "DeleteSnapshot"
	OpDelete          = "DeleteVolume"
	defaultRPCTimeout = 2 * time.Minute
)

// Ops lists the operations RunOps measures, in table order.
var Ops = []string{OpCreate, OpPublish, OpPublishAgain, OpSnapshot, OpExpand, OpUnpublish, OpDeleteSnapshot, OpDelete}

// OpsConfig shapes one RunOps.
type OpsConfig struct {
	// Lanes run side by side, each with its own emulator and controller
	// (so nothing is shared between them, not even a poller); Iterations
	// volume lifecycles run one after another in each lane.
	Lanes, Iterations int
	// Warmup untimed lifecycles run first in each lane (at least one):
	// Keystone, version discovery and connections happen once per
	// process, and the poller learns each kind of change from the waits
	// it has seen, as in a controller that has been running.
	Warmup int
	// Profile and Latency set the emulator's intrinsic times.
	Profile string
	Latency map[string]time.Duration
	Seed    int64
	// Reference, when set, is cloud-provider-openstack's plugin binary:
	// each lane runs it over its socket instead of our controller in
	// process (its calls are counted; it has no polls to tell apart).
	Reference string
}

// Sample is one operation's measurement.
type Sample struct {
	Latency   time.Duration
	Intrinsic time.Duration // 0 when the operation has no cloud-side change
	Calls     int           // API calls, Keystone excluded
	Mutating  int           // POST, PUT, DELETE
	Polls     int           // calls the shared poller made
}

// OpsResult holds every sample by operation, and the emulator's latency
// settings the run used.
type OpsResult struct {
	Samples   map[string][]Sample
	Latencies map[string]time.Duration
}

// RunOps measures each controller operation one at a time, as a lone
// provisioner would issue it, against the emulator's latency profile.
func RunOps(ctx context.Context, cfg OpsConfig) (*OpsResult, error) {
	if cfg.Lanes <= 0 {
		cfg.Lanes = 1
	}
	if cfg.Iterations <= 0 {
		cfg.Iterations = 1
	}
	if cfg.Profile == "" {
		cfg.Profile = "bench"
	}
	res := &OpsResult{Samples: map[string][]Sample{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Lanes)
	for lane := 0; lane < cfg.Lanes; lane++ {
		wg.Add(1)
		go func(lane int) {
			defer wg.Done()
			samples, lat, err := runLane(ctx, cfg, lane)
			if err != nil {
				errs <- fmt.Errorf("lane %d: %w", lane, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			res.Latencies = lat
			for op, s := range samples {
				res.Samples[op] = append(res.Samples[op], s...)
			}
		}(lane)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return res, nil
}

type lane struct {
	emu  *emulator.Emulator
	cs   controller
	obs  *callCounter
	w    *watcher
	out  map[string][]Sample
	node string
}

// measure runs one RPC with fresh counters and records it. intrinsicOf,
// when set, gives the cloud's own time for the operation from start.
func (l *lane) measure(op string, rpc func(context.Context) error, intrinsicOf func(start time.Time) time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultRPCTimeout)
	defer cancel()
	l.emu.ResetCounters()
	l.obs.reset()
	start := time.Now()
	if err := rpc(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s := Sample{Latency: time.Since(start)}
	s.Calls, s.Mutating = apiCalls(l.emu)
	s.Polls = l.obs.polls()
	if intrinsicOf != nil {
		s.Intrinsic = intrinsicOf(start)
	}
	l.out[op] = append(l.out[op], s)
	return nil
}

func runLane(ctx context.Context, cfg OpsConfig, n int) (map[string][]Sample, map[string]time.Duration, error) {
	emu, err := emulator.Start(emulator.Options{Profile: cfg.Profile, Latency: cfg.Latency, Servers: servers(1),
		Seed: cfg.Seed*1000 + int64(n) + 1, QuotaVolumes: -1, QuotaGigabytes: -1, QuotaSnapshots: -1})
	if err != nil {
		return nil, nil, err
	}
	defer emu.Close()
	obs := newCallCounter()
	var cs controller
	if cfg.Reference != "" {
		p, err := startPlugin(ctx, StormConfig{Plugin: cfg.Reference, Reference: true}, emu)
		if err != nil {
			return nil, nil, err
		}
		defer p.stop()
		cs = clientController{p.cc}
	} else if cs, err = newController(emu, obs); err != nil {
		return nil, nil, err
	}
	l := &lane{emu: emu, cs: cs, obs: obs, w: startWatcher(emu), out: map[string][]Sample{}, node: nodeID(0)}
	defer l.w.close()
	for i := 0; i < max(cfg.Warmup, 1); i++ {
		if err := l.lifecycle(ctx, fmt.Sprintf("warm-%d-%d", n, i), false); err != nil {
			return nil, nil, err
		}
	}
	l.out = map[string][]Sample{}
	for i := 0; i < cfg.Iterations; i++ {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if err := l.lifecycle(ctx, fmt.Sprintf("pvc-%d-%d", n, i), true); err != nil {
			return nil, nil, err
		}
	}
	return l.out, emu.Latencies(), nil
}

var mountCap = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

// lifecycle takes one volume through create, publish, snapshot, expand,
// unpublish and delete, measuring each step when record is set.
func (l *lane) lifecycle(_ context.Context, name string, record bool) error {
	m := l.measure
	if !record {
		m = unmeasured
	}
	var volID, snapID string
	steps := []struct {
		op        string
		rpc       func(context.Context) error
		intrinsic func(time.Time) time.Duration
	}{
		{OpCreate, func(ctx context.Context) error {
			r, err := l.cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{mountCap},
				CapacityRange: &csi.CapacityRange{RequiredBytes: gib}})
			if err == nil {
				volID = r.GetVolume().GetVolumeId()
			}
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(volID, start, func(o observation) bool { return o.status == "available" })
		}},
		{OpPublish, func(ctx context.Context) error {
			_, err := l.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: l.node, VolumeCapability: mountCap})
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(volID, start, func(o observation) bool { return o.status == "in-use" && len(o.attached) > 0 })
		}},
		{OpPublishAgain, func(ctx context.Context) error {
			_, err := l.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: volID, NodeId: l.node, VolumeCapability: mountCap})
			return err
		}, nil},
		{OpSnapshot, func(ctx context.Context) error {
			var err error
			snapID, err = l.snapshotUntilReady(ctx, name+"-snap", volID)
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(snapID, start, func(o observation) bool { return o.status == "available" })
		}},
		{OpExpand, func(ctx context.Context) error {
			_, err := l.cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: volID,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: mountCap})
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(volID, start, func(o observation) bool { return o.status != "extending" && o.sizeGiB >= 2 })
		}},
		{OpUnpublish, func(ctx context.Context) error {
			_, err := l.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: volID, NodeId: l.node})
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(volID, start, func(o observation) bool { return o.status == "available" && len(o.attached) == 0 })
		}},
		{OpDeleteSnapshot, func(ctx context.Context) error {
			_, err := l.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snapID})
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(snapID, start, func(o observation) bool { return o.gone })
		}},
		{OpDelete, func(ctx context.Context) error {
			_, err := l.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volID})
			return err
		}, func(start time.Time) time.Duration {
			return l.w.intrinsic(volID, start, func(o observation) bool { return o.gone })
		}},
	}
	for _, s := range steps {
		if err := m(s.op, s.rpc, s.intrinsic); err != nil {
			return err
		}
	}
	return nil
}

// unmeasured runs a step as lane.measure does, recording nothing.
func unmeasured(op string, rpc func(context.Context) error, intrinsicOf func(time.Time) time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultRPCTimeout)
	defer cancel()
	start := time.Now()
	if err := rpc(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if intrinsicOf != nil {
		intrinsicOf(start) // lets an RPC that does not wait finish in the cloud
	}
	return nil
}

// snapshotUntilReady creates a snapshot of volID and waits until it is
// ready as the snapshotter sees it: it lists the snapshot again while
// ReadyToUse is false.
func (l *lane) snapshotUntilReady(ctx context.Context, name, volID string) (string, error) {
	r, err := l.cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: volID,
		Parameters: map[string]string{"force-create": "true"}})
	if err != nil {
		return "", err
	}
	snapID := r.GetSnapshot().GetSnapshotId()
	for ready := r.GetSnapshot().GetReadyToUse(); !ready; {
		time.Sleep(100 * time.Millisecond)
		lr, err := l.cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: snapID})
		if err != nil {
			return snapID, err
		}
		ready = len(lr.GetEntries()) == 1 && lr.GetEntries()[0].GetSnapshot().GetReadyToUse()
	}
	return snapID, nil
}

const gib = int64(1) << 30
