package bench

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// nodeID returns the Nova server id of bench node i.
func nodeID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1) }

// servers returns n remote (not hot-plugged) servers in AZ nova.
func servers(n int) []emulator.ServerSpec {
	out := make([]emulator.ServerSpec, n)
	for i := range out {
		out[i] = emulator.ServerSpec{ID: nodeID(i), Name: fmt.Sprintf("node-%d", i+1), AZ: "nova"}
	}
	return out
}

// callCounter is an openstack.Observer that counts requests by the cloud
// layer's operation name, which tells polls ("*_poll") from the rest.
type callCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func newCallCounter() *callCounter { return &callCounter{ops: map[string]int{}} }

func (c *callCounter) ObserveRequest(service, op string, _ int, _ time.Duration) {
	if service == "identity" {
		return
	}
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}
func (c *callCounter) ObserveRetry(string, string, string)        {}
func (c *callCounter) ObserveRateLimitWait(string, time.Duration) {}
func (c *callCounter) ObserveTokenRenewal(string)                 {}
func (c *callCounter) ObserveWait(string, time.Duration, string)  {}
func (c *callCounter) reset()                                     { c.mu.Lock(); c.ops = map[string]int{}; c.mu.Unlock() }
func (c *callCounter) polls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for op, v := range c.ops {
		if strings.HasSuffix(op, "_poll") {
			n += v
		}
	}
	return n
}

// apiCalls splits the emulator's counters (Keystone left out: token
// issuance depends on the cache, not on the operation) into all calls and
// mutating ones.
func apiCalls(e *emulator.Emulator) (total, mutating int) {
	for k, v := range e.Counters() {
		method, path, _ := strings.Cut(k, " ")
		if strings.HasPrefix(path, "/identity") {
			continue
		}
		total += int(v)
		if method != "GET" && method != "HEAD" {
			mutating += int(v)
		}
	}
	return total, mutating
}

// newController builds the real cloud layer and controller over e.
func newController(e *emulator.Emulator, obs openstack.Observer) (*cinder.ControllerServer, error) {
	cfg, _, err := config.Parse("cloud.conf", []byte(e.CloudConf("Global", "demo")))
	if err != nil {
		return nil, err
	}
	clouds, err := openstack.NewCloudsFromConfig(cfg, openstack.Options{Observer: obs})
	if err != nil {
		return nil, err
	}
	co := cinder.DefaultControllerOptions()
	co.Cluster = "bench"
	return cinder.NewControllerServer(clouds, co)
}
