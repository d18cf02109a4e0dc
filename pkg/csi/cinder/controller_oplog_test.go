package cinder

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// opLog is an openstack.Observer that keeps, in order, the operation and
// status of every request the cloud layer sends (Keystone left out): the
// emulator's counters say how many calls, this says which came first, so
// a test can check that an RPC sends its change before reading anything.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) ObserveRequest(service, operation string, statusCode int, _ time.Duration) {
	if service == "identity" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, fmt.Sprintf("%s %d", operation, statusCode))
}

func (*opLog) ObserveRetry(string, string, string)        {}
func (*opLog) ObserveRateLimitWait(string, time.Duration) {}
func (*opLog) ObserveTokenRenewal(string)                 {}
func (*opLog) ObserveWait(string, time.Duration, string)  {}

func (l *opLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = nil
}

// sent returns the requests other than a wait's polls, in order, and how
// many polls there were: the polls' number depends on how fast the
// emulator finishes, the rest does not.
func (l *opLog) sent() (ops []string, polls int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, op := range l.ops {
		if strings.Contains(strings.SplitN(op, " ", 2)[0], "poll") {
			polls++
			continue
		}
		ops = append(ops, op)
	}
	return ops, polls
}

// all returns every request, in order, for a failure message.
func (l *opLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.ops, ", ")
}

// assertSentExactly checks the requests other than polls, in order.
func (e *controllerEnv) assertSentExactly(want []string) {
	e.t.Helper()
	if got, _ := e.ops.sent(); strings.Join(got, ", ") != strings.Join(want, ", ") {
		e.t.Errorf("requests = %v, want %v; all: %s", got, want, e.ops.all())
	}
}

// assertSent checks that the requests other than polls began with want,
// in order; a wait that sent the change polls at least once.
func (e *controllerEnv) assertSent(want []string) {
	e.t.Helper()
	got, polls := e.ops.sent()
	if len(got) < len(want) || strings.Join(got[:len(want)], ", ") != strings.Join(want, ", ") {
		e.t.Errorf("requests = %v (and %d polls), want them to begin with %v; all: %s", got, polls, want, e.ops.all())
	}
	if len(want) > 0 && strings.HasSuffix(want[0], " 202") && polls == 0 {
		e.t.Errorf("no poll after %s: all requests %s", want[0], e.ops.all())
	}
}
