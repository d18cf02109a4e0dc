package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// StormConfig shapes one RunStorm.
type StormConfig struct {
	// Plugin is the cinder-csi-plugin binary to run.
	Plugin string
	// Reference marks Plugin as cloud-provider-openstack's plugin: other
	// flags, and none of our metrics to read.
	Reference bool
	// Volumes are created and published across Nodes by Workers, the way
	// the provisioner's and attacher's worker pools issue them.
	Volumes, Nodes, Workers int
	// Phased runs the four RPCs as four phases, each over every volume
	// (create all, publish all, unpublish all, delete all), instead of
	// create+publish then unpublish+delete per volume.
	Phased bool
	// CloudRPS is the rate limit the emulator enforces per project (429
	// beyond it); PluginQPS and PluginBurst the plugin's client-side
	// limiter (--openstack-api-qps, --openstack-api-burst). 0: none.
	CloudRPS    float64
	PluginQPS   float64
	PluginBurst int
	// Faults are injected on top of the rate limit.
	Faults  emulator.Faults
	Profile string
	Seed    int64
	// Log, when set, receives the plugin's output.
	Log io.Writer
}

// DefaultStorm is the storm of issue 10: 200 volumes, 10 nodes, 100
// workers, a cloud that allows 20 requests/s and a plugin limited to 18.
func DefaultStorm(plugin string) StormConfig {
	return StormConfig{Plugin: plugin, Volumes: 200, Nodes: 10, Workers: 100, CloudRPS: 20, PluginQPS: 18, PluginBurst: 10, Profile: "bench"}
}

// CallsStorm is the storm of issue 20, the one compared with the
// reference plugin: 200 volumes, 10 servers, 50 workers, the realistic
// profile, four phases, no rate limit on either side.
func CallsStorm(plugin string) StormConfig {
	return StormConfig{Plugin: plugin, Volumes: 200, Nodes: 10, Workers: 50, Phased: true, Profile: "realistic"}
}

// Fault mixes of issue 20's storms.
var (
	// MixedFaults: 5 % of every API call answered 500 or 503, 5 % 429.
	MixedFaults = emulator.Faults{ErrorRate: 0.05, RateLimitRate: 0.05}
	// VolumeGetFaults: the same, on GET volumes/{id} only.
	VolumeGetFaults = emulator.Faults{ErrorRate: 0.05, RateLimitRate: 0.05, OnlyPaths: []string{"GET /volume/v3/{project_id}/volumes/{volume_id}"}}
)

// Phases of a storm.
const (
	PhaseCreate    = "create"
	PhasePublish   = "publish"
	PhaseUnpublish = "unpublish"
	PhaseDelete    = "delete"
	PhaseUp        = "create+publish"
	PhaseDown      = "unpublish+delete"
)

// StormResult is one storm's figures.
type StormResult struct {
	// Up is 200 × (CreateVolume then ControllerPublish); Down is
	// 200 × (ControllerUnpublish then DeleteVolume).
	UpWall, DownWall time.Duration
	// Wall of each phase (PhaseCreate... when phased, PhaseUp and
	// PhaseDown otherwise).
	Wall map[string]time.Duration
	// Per-volume latency of each phase (both RPCs, retries included).
	Up, Down []time.Duration
	// Per-RPC latencies.
	RPC map[string][]time.Duration
	// Retries is how many RPCs answered an error and were issued again,
	// as the sidecars would; Failed counts those answers by gRPC code.
	Retries int
	Failed  map[string]int
	// Calls counts every API call the cloud saw (Keystone included, 429s
	// included); Polls those the shared poller made (-1 for the
	// reference, which has no such metric); Mutating the POST, PUT and
	// DELETE ones; Endpoints the calls by "METHOD /path/template".
	Calls, Polls, Mutating int
	Endpoints              map[string]int
	// TooMany is the 429s the plugin received.
	TooMany int
	// PeakRSS is the plugin's VmHWM in bytes.
	PeakRSS int64
	// Leaked counts volumes or attachments left after the teardown.
	Leaked int
}

// storm is one running storm.
type storm struct {
	cfg StormConfig
	p   *plugin
	res *StormResult
	mu  sync.Mutex
	ids []string
}

// RunStorm starts the emulator and the plugin binary and runs the storm.
func RunStorm(ctx context.Context, cfg StormConfig) (*StormResult, error) {
	if cfg.Profile == "" {
		cfg.Profile = "bench"
	}
	faults := cfg.Faults
	faults.RateLimitRPS = cfg.CloudRPS
	emu, err := emulator.Start(emulator.Options{Profile: cfg.Profile, Servers: servers(cfg.Nodes), Seed: cfg.Seed + 1,
		QuotaVolumes: -1, QuotaGigabytes: -1, QuotaSnapshots: -1, MaxDevicesPerServer: cfg.Volumes + 1})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	p, err := startPlugin(ctx, cfg, emu)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	// The plugin authenticates at start; faults begin with the storm.
	emu.SetFaults(faults)
	emu.ResetCounters()
	var base map[string]float64
	if !cfg.Reference {
		if base, err = p.metric("openstack_api_requests_total"); err != nil {
			return nil, err
		}
	}
	s := &storm{cfg: cfg, p: p, ids: make([]string, cfg.Volumes),
		res: &StormResult{RPC: map[string][]time.Duration{}, Wall: map[string]time.Duration{}, Failed: map[string]int{}}}
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	emu.SetFaults(emulator.Faults{})
	return s.finish(emu, base)
}

func (s *storm) run(ctx context.Context) error {
	if !s.cfg.Phased {
		var err error
		if s.res.Up, err = s.phase(ctx, PhaseUp, s.create, s.publish); err != nil {
			return err
		}
		s.res.Down, err = s.phase(ctx, PhaseDown, s.unpublish, s.deleteVolume)
		s.res.UpWall, s.res.DownWall = s.res.Wall[PhaseUp], s.res.Wall[PhaseDown]
		return err
	}
	steps := []struct {
		name string
		rpc  func(context.Context, int) error
	}{{PhaseCreate, s.create}, {PhasePublish, s.publish}, {PhaseUnpublish, s.unpublish}, {PhaseDelete, s.deleteVolume}}
	var per [][]time.Duration
	for _, st := range steps {
		d, err := s.phase(ctx, st.name, st.rpc)
		if err != nil {
			return err
		}
		per = append(per, d)
	}
	s.res.Up, s.res.Down = addUp(per[0], per[1]), addUp(per[2], per[3])
	s.res.UpWall = s.res.Wall[PhaseCreate] + s.res.Wall[PhasePublish]
	s.res.DownWall = s.res.Wall[PhaseUnpublish] + s.res.Wall[PhaseDelete]
	return nil
}

func addUp(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// phase runs rpcs one after the other for every volume, from the
// workers, and records the phase's wall time.
func (s *storm) phase(ctx context.Context, name string, rpcs ...func(context.Context, int) error) ([]time.Duration, error) {
	start := time.Now()
	d, err := pool(s.cfg.Workers, s.cfg.Volumes, func(i int) error {
		for _, rpc := range rpcs {
			if err := rpc(ctx, i); err != nil {
				return err
			}
		}
		return nil
	})
	s.res.Wall[name] = time.Since(start)
	return d, err
}

// call issues one RPC the way a sidecar does and records it.
func (s *storm) call(ctx context.Context, op string, i int, rpc func(context.Context) error) error {
	d, failed, err := retry(ctx, rpc)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range failed {
		s.res.Failed[c.String()]++
	}
	s.res.Retries += len(failed)
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, i, err)
	}
	s.res.RPC[op] = append(s.res.RPC[op], d)
	return nil
}

func (s *storm) create(ctx context.Context, i int) error {
	return s.call(ctx, OpCreate, i, func(ctx context.Context) error {
		r, err := s.p.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-storm-%03d", i),
			VolumeCapabilities: []*csi.VolumeCapability{mountCap}, CapacityRange: &csi.CapacityRange{RequiredBytes: gib}})
		if err == nil {
			s.ids[i] = r.GetVolume().GetVolumeId()
		}
		return err
	})
}

func (s *storm) publish(ctx context.Context, i int) error {
	return s.call(ctx, OpPublish, i, func(ctx context.Context) error {
		_, err := s.p.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: s.ids[i], NodeId: nodeID(i % s.cfg.Nodes), VolumeCapability: mountCap})
		return err
	})
}

func (s *storm) unpublish(ctx context.Context, i int) error {
	return s.call(ctx, OpUnpublish, i, func(ctx context.Context) error {
		_, err := s.p.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: s.ids[i], NodeId: nodeID(i % s.cfg.Nodes)})
		return err
	})
}

func (s *storm) deleteVolume(ctx context.Context, i int) error {
	return s.call(ctx, OpDelete, i, func(ctx context.Context) error {
		_, err := s.p.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: s.ids[i]})
		return err
	})
}

// finish reads the counters, the plugin's metrics and what is left.
func (s *storm) finish(emu *emulator.Emulator, base map[string]float64) (*StormResult, error) {
	res := s.res
	res.Calls = int(emu.TotalCalls())
	res.Endpoints = map[string]int{}
	for k, v := range emu.Counters() {
		res.Endpoints[k] = int(v)
		if m, _, _ := strings.Cut(k, " "); m != "GET" && m != "HEAD" {
			res.Mutating += int(v)
		}
	}
	var err error
	if res.PeakRSS, err = peakRSS(s.p.cmd.Process.Pid); err != nil {
		return nil, err
	}
	res.Leaked = settledLeaks(emu)
	if s.cfg.Reference {
		res.Polls = -1
		return res, nil
	}
	after, err := s.p.metric("openstack_api_requests_total")
	if err != nil {
		return nil, err
	}
	for series, v := range after {
		d := int(v - base[series])
		if strings.Contains(series, `code="429"`) {
			res.TooMany += d
		}
		if strings.Contains(series, `operation="volume_poll"`) || strings.Contains(series, `operation="snapshot_poll"`) {
			res.Polls += d
		}
	}
	return res, nil
}

// settledLeaks counts the volumes and attachments left once the cloud has
// finished what it was asked (a plugin that does not wait for a delete
// returns before the volume is gone), giving it up to 10 s.
func settledLeaks(emu *emulator.Emulator) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := len(emu.Volumes()) + len(emu.Attachments())
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Endpoint shortens an emulator counter key for a table: the method and
// the path after the service's version and project.
func Endpoint(key string) string {
	method, path, _ := strings.Cut(key, " ")
	for _, prefix := range []string{"/volume/v3/{project_id}", "/compute/v2.1", "/identity/v3"} {
		if strings.HasPrefix(path, prefix) {
			path = strings.TrimPrefix(path, prefix)
			if prefix == "/identity/v3" {
				path = "identity" + path
			}
			break
		}
	}
	return method + " " + strings.TrimPrefix(path, "/")
}

// SortedEndpoints lists the keys of counts, most called first.
func SortedEndpoints(counts map[string]float64) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// pool runs n jobs on workers goroutines and returns each job's duration.
func pool(workers, n int, job func(i int) error) ([]time.Duration, error) {
	jobs := make(chan int)
	durs := make([]time.Duration, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				start := time.Now()
				if err := job(i); err != nil {
					once.Do(func() { first = err })
				}
				durs[i] = time.Since(start)
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return durs, first
}

// sidecarTimeout is the per-call deadline; the sidecars' defaults are
// shorter (10-15 s) but retry, which a long deadline measures without the
// retry's own backoff.
const sidecarTimeout = 2 * time.Minute

// maxRPCTries bounds the tries of one RPC: a sidecar retries for ever, a
// benchmark gives up and fails.
const maxRPCTries = 20

// retry issues rpc until it answers OK, as the sidecars do (they retry
// every error, with backoff), and returns the total time and the codes of
// the answers that were not OK.
func retry(ctx context.Context, rpc func(context.Context) error) (time.Duration, []codes.Code, error) {
	start := time.Now()
	var failed []codes.Code
	for {
		cctx, cancel := context.WithTimeout(ctx, sidecarTimeout)
		err := rpc(cctx)
		cancel()
		c := status.Code(err)
		if c == codes.OK {
			return time.Since(start), failed, nil
		}
		failed = append(failed, c)
		if len(failed) >= maxRPCTries || ctx.Err() != nil {
			return 0, failed, err
		}
		time.Sleep(time.Second)
	}
}
