// Package bench measures our controller's operations on the openstack-rig's
// real Cinder (Ceph RBD) and Nova: p50 latency of each CSI call until it
// returns done, and the OpenStack API calls it makes. The figures go into
// docs/benchmarks.md and set the emulator's "realistic" latency profile.
//
//	make e2e-openstack   (runs this with -bench; report in $E2E_BENCH_REPORT)
package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

const gib = int64(1) << 30

// counter counts the controller's OpenStack requests (token issues too).
type counter struct {
	n   atomic.Int64
	mu  sync.Mutex
	ops map[string]int64
}

func (c *counter) ObserveRequest(_, operation string, _ int, _ time.Duration) {
	c.n.Add(1)
	c.mu.Lock()
	c.ops[operation]++
	c.mu.Unlock()
}
func (c *counter) ObserveRetry(string, string, string)        {}
func (c *counter) ObserveRateLimitWait(string, time.Duration) {}
func (c *counter) ObserveTokenRenewal(string)                 {}
func (c *counter) ObserveWait(string, time.Duration, string)  {}
func (c *counter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int64{}
	for k, v := range c.ops {
		m[k] = v
	}
	return m
}

type result struct {
	op        string
	durations []time.Duration
	calls     int64
	detail    map[string]int64
}

func (r *result) p50() time.Duration {
	d := append([]time.Duration(nil), r.durations...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

var (
	probed    = map[string]bool{}
	resultsMu sync.Mutex
	results   []*result
)

// measure runs op b.N times; setup and teardown run outside the timer.
//
// The framework first calls every sub-benchmark with b.N = 1 to size it;
// with -benchtime Nx that probe is thrown away, so it does no work here.
// maxIter (0 = b.N) caps the iterations of the slow operations.
func measure(b *testing.B, cnt *counter, name string, maxIter int, setup func(i int) any, op func(_ int, x any), teardown func(x any)) {
	b.Run(name, func(b *testing.B) {
		if !probed[name] && b.N == 1 {
			probed[name] = true
			return
		}
		n := b.N
		if maxIter > 0 && n > maxIter {
			n = maxIter
		}
		r := &result{op: name, detail: map[string]int64{}}
		for i := 0; i < n; i++ {
			b.StopTimer()
			var x any
			if setup != nil {
				x = setup(i)
			}
			before, beforeOps := cnt.n.Load(), cnt.snapshot()
			b.StartTimer()
			t0 := time.Now()
			op(i, x)
			r.durations = append(r.durations, time.Since(t0))
			b.StopTimer()
			r.calls += cnt.n.Load() - before
			for k, v := range cnt.snapshot() {
				if d := v - beforeOps[k]; d > 0 {
					r.detail[k] += d
				}
			}
			if teardown != nil {
				teardown(x)
			}
		}
		b.ReportMetric(float64(r.p50().Milliseconds()), "p50-ms")
		b.ReportMetric(float64(r.calls)/float64(n), "api-calls/op")
		resultsMu.Lock()
		results = append(results, r)
		resultsMu.Unlock()
	})
}

func BenchmarkRealCinder(b *testing.B) {
	env := rig.Require(b)
	cnt := &counter{ops: map[string]int64{}}
	d := rig.StartDriver(b, env, "bench", "", cnt)
	cc := csi.NewControllerClient(d.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tag := "e2e-bench-" + rig.NewUUID()[:6]
	capMount := []*csi.VolumeCapability{{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}}
	seq := 0
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	create := func(src *csi.VolumeContentSource) string {
		seq++
		r, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("%s-%d", tag, seq), CapacityRange: &csi.CapacityRange{RequiredBytes: gib}, VolumeCapabilities: capMount, VolumeContentSource: src})
		must(err)
		return r.Volume.VolumeId
	}
	// Aborted and Unavailable are retried after a second, as the
	// provisioner does (a backup's intermediate snapshot can still be
	// going away when its volume is deleted).
	del := func(id string) {
		for tries := 1; ; tries++ {
			_, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
			if c := status.Code(err); (c == codes.Aborted || c == codes.Unavailable) && tries < 60 {
				time.Sleep(time.Second)
				continue
			}
			must(err)
			return
		}
	}
	snapshot := func(vol string, params map[string]string) string {
		seq++
		name := fmt.Sprintf("%s-s%d", tag, seq)
		for {
			r, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: vol, Parameters: params})
			must(err)
			if r.Snapshot.ReadyToUse {
				return r.Snapshot.SnapshotId
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	delSnap := func(id string) {
		_, err := cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id})
		must(err)
	}
	base := create(nil)
	defer del(base)

	// The first calls pay for the token and the catalog: one untimed
	// create and delete.
	del(create(nil))
	measure(b, cnt, "CreateVolume 1 GiB", 0, nil, func(int, any) { ids = append(ids, create(nil)) }, nil)
	measure(b, cnt, "DeleteVolume", 0, func(int) any { return create(nil) }, func(_ int, x any) { del(x.(string)) }, nil)
	measure(b, cnt, "CreateSnapshot", 0, nil, func(int, any) { snaps = append(snaps, snapshot(base, nil)) }, nil)
	measure(b, cnt, "CreateVolume from snapshot", 0, nil, func(int, any) {
		ids = append(ids, create(&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snaps[0]}}}))
	}, nil)
	measure(b, cnt, "CreateVolume clone", 0, nil, func(int, any) {
		ids = append(ids, create(&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: base}}}))
	}, nil)
	// Volumes made from a snapshot are RBD children: delete them before
	// the snapshots.
	for _, id := range ids {
		del(id)
	}
	ids = nil
	measure(b, cnt, "DeleteSnapshot", 0, func(int) any {
		if len(snaps) > 0 {
			s := snaps[0]
			snaps = snaps[1:]
			return s
		}
		return snapshot(base, nil)
	}, func(_ int, x any) { delSnap(x.(string)) }, nil)
	for _, s := range snaps {
		delSnap(s)
	}
	snaps = nil
	size := int64(1)
	measure(b, cnt, "ControllerExpandVolume (available)", 0, nil, func(int, any) {
		size++
		_, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: base, CapacityRange: &csi.CapacityRange{RequiredBytes: size * gib}})
		must(err)
	}, nil)
	measure(b, cnt, "ControllerPublishVolume (Nova attach)", 0, nil, func(int, any) {
		_, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: base, NodeId: env.Node1, VolumeCapability: capMount[0]})
		must(err)
	}, func(any) {
		_, err := cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: base, NodeId: env.Node1})
		must(err)
	})
	measure(b, cnt, "ControllerUnpublishVolume (Nova detach)", 0, func(int) any {
		_, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: base, NodeId: env.Node1, VolumeCapability: capMount[0]})
		must(err)
		return nil
	}, func(int, any) {
		_, err := cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: base, NodeId: env.Node1})
		must(err)
	}, nil)
	// A backup is slow (the Ceph backup driver copies the intermediate
	// snapshot in full: about a minute for 1 GiB on the rig) and a second
	// backup of one volume is incremental: one backup of a fresh 1 GiB
	// volume, its delete timed too.
	var bvol, bk string
	measure(b, cnt, "CreateSnapshot backup class (1 GiB, until ready)", 1, func(int) any {
		bvol = create(nil)
		return nil
	}, func(int, any) { bk = snapshot(bvol, map[string]string{"type": "backup"}) }, nil)
	measure(b, cnt, "DeleteSnapshot backup class", 1, func(int) any {
		if bk == "" {
			bvol = create(nil)
			bk = snapshot(bvol, map[string]string{"type": "backup"})
		}
		return bk
	}, func(_ int, x any) { delSnap(x.(string)); bk = "" }, func(any) { del(bvol); bvol = "" })
	measure(b, cnt, "ListVolumes (one page)", 0, nil, func(int, any) {
		_, err := cc.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 100})
		must(err)
	}, nil)
	measure(b, cnt, "GetCapacity", 0, nil, func(int, any) {
		_, err := cc.GetCapacity(ctx, &csi.GetCapacityRequest{})
		must(err)
	}, nil)
	writeReport(b)
}

var (
	ids   []string
	snaps []string
)

func writeReport(b *testing.B) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| operation (CSI call until it returns done) | p50 | API calls/op | requests |\n|---|---|---|---|\n")
	done := map[string]bool{}
	for _, r := range results {
		// The benchmark framework runs each sub-benchmark at b.N = 1
		// first; keep the last (largest) run of each.
		last := r
		for _, o := range results {
			if o.op == r.op {
				last = o
			}
		}
		if done[r.op] {
			continue
		}
		done[r.op] = true
		n := int64(len(last.durations))
		var parts []string
		keys := make([]string, 0, len(last.detail))
		for k := range last.detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s×%.1f", k, float64(last.detail[k])/float64(n)))
		}
		fmt.Fprintf(&sb, "| %s | %.2f s | %.1f | %s |\n", last.op, last.p50().Seconds(), float64(last.calls)/float64(n), strings.Join(parts, ", "))
	}
	b.Logf("bench: real Cinder figures:\n%s", sb.String())
	if path := os.Getenv("E2E_BENCH_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(sb.String()), 0o644)
	}
}
