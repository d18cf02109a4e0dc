package libvirtguest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The frames of the agent's vmrig.fwd port: magic, type, stream id
// (uint32 BE), payload length (uint32 BE), payload.
const (
	frameOpen     = 1 // payload: the guest target, "unix:/path" or "tcp:host:port"
	frameData     = 2
	frameEOF      = 3 // half close
	frameOpened   = 4
	frameOpenFail = 5 // payload: the error
	frameReset    = 6
	frameMagic    = 0xF7
	frameHeader   = 10
	// chunk is what one DATA frame carries at most: the agent reads its
	// guest side 32 KiB at a time too.
	chunk = 32 << 10
)

// mux is the host end of vmrig.fwd: many streams over one port.
type mux struct {
	port    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	next    uint32
	streams map[uint32]*fwdStream
}

type fwdStream struct {
	conn   *net.UnixConn
	opened chan error // the guest's OPENED (nil) or OPENFAIL
	mu     sync.Mutex
	eofs   int // half closes seen (ours and the guest's); 2 ends the stream
}

func newMux(port net.Conn) *mux {
	m := &mux{port: port, streams: map[uint32]*fwdStream{}}
	go m.read()
	return m
}

func (m *mux) send(typ byte, sid uint32, p []byte) error {
	h := make([]byte, frameHeader, frameHeader+len(p))
	h[0], h[1] = frameMagic, typ
	binary.BigEndian.PutUint32(h[2:], sid)
	binary.BigEndian.PutUint32(h[6:], uint32(len(p)))
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, err := m.port.Write(append(h, p...))
	return err
}

func (m *mux) read() {
	r := bufio.NewReaderSize(m.port, 1<<16)
	h := make([]byte, frameHeader)
	for {
		if _, err := io.ReadFull(r, h); err != nil {
			m.closeStreams()
			return
		}
		if h[0] != frameMagic {
			m.closeStreams()
			return // out of step: nothing sensible can follow
		}
		typ, sid, n := h[1], binary.BigEndian.Uint32(h[2:]), binary.BigEndian.Uint32(h[6:])
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			m.closeStreams()
			return
		}
		m.mu.Lock()
		s := m.streams[sid]
		m.mu.Unlock()
		if s != nil {
			m.deliver(sid, s, typ, p)
		}
	}
}

func (m *mux) deliver(sid uint32, s *fwdStream, typ byte, p []byte) {
	switch typ {
	case frameOpened:
		s.opened <- nil
	case frameOpenFail:
		s.opened <- errors.New(string(p))
	case frameData:
		if _, err := s.conn.Write(p); err != nil {
			_ = m.send(frameReset, sid, nil)
			m.drop(sid)
		}
	case frameEOF:
		_ = s.conn.CloseWrite()
		m.halfClosed(sid, s)
	case frameReset:
		m.drop(sid)
	}
}

func (m *mux) halfClosed(sid uint32, s *fwdStream) {
	s.mu.Lock()
	s.eofs++
	done := s.eofs == 2
	s.mu.Unlock()
	if done {
		m.drop(sid)
	}
}

func (m *mux) drop(sid uint32) {
	m.mu.Lock()
	s := m.streams[sid]
	delete(m.streams, sid)
	m.mu.Unlock()
	if s != nil {
		s.conn.Close()
	}
}

func (m *mux) closeStreams() {
	m.mu.Lock()
	for sid, s := range m.streams {
		s.conn.Close()
		delete(m.streams, sid)
	}
	m.mu.Unlock()
}

func (m *mux) close() {
	m.port.Close()
	m.closeStreams()
}

// Forward listens on the host unix socket listen and relays every
// connection to target in the guest ("unix:/csi/csi.sock") until ctx ends
// or the guest connection closes. The stream has no flow control of its
// own (the agent's design): a peer that stops reading stalls the port.
func (g *Guest) Forward(ctx context.Context, listen, target string) error {
	_ = os.Remove(listen)
	ln, err := net.Listen("unix", listen)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-g.closed:
		}
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.mux.relay(c.(*net.UnixConn), target)
		}
	}()
	return nil
}

// openTimeout bounds the guest's answer to OPEN: the agent dials its
// target with a 5 s timeout.
const openTimeout = 10 * time.Second

func (m *mux) relay(c *net.UnixConn, target string) {
	s := &fwdStream{conn: c, opened: make(chan error, 1)}
	m.mu.Lock()
	m.next++
	sid := m.next
	m.streams[sid] = s
	m.mu.Unlock()
	if err := m.send(frameOpen, sid, []byte(target)); err != nil {
		m.drop(sid)
		return
	}
	select {
	case err := <-s.opened:
		if err != nil {
			// Nothing listens there yet (a plugin still starting): the
			// host client sees the connection close and retries.
			m.drop(sid)
			return
		}
	case <-time.After(openTimeout):
		_ = m.send(frameReset, sid, nil)
		m.drop(sid)
		return
	}
	b := make([]byte, chunk)
	for {
		n, err := c.Read(b)
		if n > 0 {
			if m.send(frameData, sid, b[:n]) != nil {
				m.drop(sid)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			_ = m.send(frameEOF, sid, nil)
			m.halfClosed(sid, s)
			return
		}
		if err != nil {
			m.mu.Lock()
			_, live := m.streams[sid]
			m.mu.Unlock()
			if live {
				_ = m.send(frameReset, sid, nil)
				m.drop(sid)
			}
			return
		}
	}
}
