// Package qmptest is a stand-in QEMU monitor for tests: it greets, answers
// every command with {"return": {}} (or a configured error), records the
// commands, and after a device_del sends DEVICE_DELETED twice, for the
// .../virtio-backend path first and then for the device, as QEMU 7.2 does.
package qmptest

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// Command is one command the monitor received.
type Command struct {
	Execute   string         `json:"execute"`
	Arguments map[string]any `json:"arguments"`
}

// Monitor is a listening stand-in monitor.
type Monitor struct {
	// Socket is the unix socket to dial.
	Socket string
	mu     sync.Mutex
	cmds   []Command
	fail   map[string]string // command -> error desc
	// noRelease keeps the guest from releasing devices (no event).
	noRelease bool
}

// New listens on a socket in t's temp dir until the test ends; it serves
// one client at a time, as QEMU does.
func New(t testing.TB) *Monitor {
	t.Helper()
	m := &Monitor{Socket: filepath.Join(t.TempDir(), "qmp.sock"), fail: map[string]string{}}
	l, err := net.Listen("unix", m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			m.serve(c)
		}
	}()
	return m
}

// Fail makes command answer a GenericError with desc ("" clears it).
func (m *Monitor) Fail(command, desc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if desc == "" {
		delete(m.fail, command)
	} else {
		m.fail[command] = desc
	}
}

// KeepDevices makes device_del succeed without DEVICE_DELETED, as a guest
// that does not release the disk.
func (m *Monitor) KeepDevices(keep bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noRelease = keep
}

// Commands returns the commands received so far, qmp_capabilities left out.
func (m *Monitor) Commands() []Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Command(nil), m.cmds...)
}

func (m *Monitor) serve(c net.Conn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	_ = enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{}, "capabilities": []any{}}})
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var cmd Command
		if json.Unmarshal(sc.Bytes(), &cmd) != nil {
			continue
		}
		m.mu.Lock()
		if cmd.Execute != "qmp_capabilities" {
			m.cmds = append(m.cmds, cmd)
		}
		desc, failed := m.fail[cmd.Execute]
		release := !m.noRelease
		m.mu.Unlock()
		if failed {
			_ = enc.Encode(map[string]any{"error": map[string]any{"class": "GenericError", "desc": desc}})
			continue
		}
		_ = enc.Encode(map[string]any{"return": map[string]any{}})
		if id, _ := cmd.Arguments["id"].(string); cmd.Execute == "device_del" && release {
			_ = enc.Encode(map[string]any{"event": "DEVICE_DELETED", "data": map[string]any{"path": "/machine/peripheral/" + id + "/virtio-backend"}})
			_ = enc.Encode(map[string]any{"event": "DEVICE_DELETED", "data": map[string]any{"device": id, "path": "/machine/peripheral/" + id}})
		}
	}
}
