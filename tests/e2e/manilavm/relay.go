package manilavm

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Relay is the host end of tcprelay: it accepts the guests' connections
// on a loopback port (the guest's --nfs-forward) and connects each to
// 127.0.0.1 at the port its first two bytes name, if allowed.
type Relay struct {
	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// StartRelay listens on an ephemeral loopback port and relays to the
// allowed ports until the test ends.
func StartRelay(t *testing.T, allowed []int) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{l: l, conns: map[net.Conn]bool{}}
	ok := map[uint16]bool{}
	for _, p := range allowed {
		ok[uint16(p)] = true
	}
	go r.serve(ok)
	t.Cleanup(r.close)
	return r
}

// Port is the listener's port, for vmrig.Options.NFSForward.
func (r *Relay) Port() int { return r.l.Addr().(*net.TCPAddr).Port }

func (r *Relay) serve(allowed map[uint16]bool) {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		go r.relay(c, allowed)
	}
}

func (r *Relay) relay(c net.Conn, allowed map[uint16]bool) {
	defer c.Close()
	var port uint16
	if binary.Read(c, binary.BigEndian, &port) != nil || !allowed[port] {
		return
	}
	up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return
	}
	defer up.Close()
	r.track(c, up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (r *Relay) track(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		r.conns[c] = true
	}
}

func (r *Relay) close() {
	_ = r.l.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		_ = c.Close()
	}
}
