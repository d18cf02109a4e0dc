// Package qmp is a minimal client of the QEMU Machine Protocol (JSON
// lines over a unix socket): the greeting, qmp_capabilities, commands and
// the asynchronous events that arrive between their replies. The
// emulator's VM hot-plug mode uses it to plug volumes into a QEMU guest as
// Nova's libvirt driver does.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Error is a command QEMU refused.
type Error struct {
	Command, Class, Desc string
}

func (e *Error) Error() string { return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc) }

// Event is an asynchronous QMP event.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// Conn is one monitor connection. It is not safe for concurrent use; a
// QEMU monitor socket serves one client at a time anyway.
type Conn struct {
	c      net.Conn
	r      *bufio.Reader
	events []Event
}

type message struct {
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	QMP json.RawMessage `json:"QMP"`
}

// Dial connects to a monitor socket, reads the greeting and enters command
// mode, all within ctx.
func Dial(ctx context.Context, socket string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &Conn{c: c, r: bufio.NewReader(c)}
	m, err := q.read(ctx)
	if err == nil && m.QMP == nil {
		err = errors.New("qmp: no greeting from the monitor")
	}
	if err == nil {
		_, err = q.Execute(ctx, "qmp_capabilities", nil)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the connection.
func (q *Conn) Close() error { return q.c.Close() }

func (q *Conn) read(ctx context.Context) (*message, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Time{}
	}
	_ = q.c.SetReadDeadline(dl)
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("qmp: %w", ctx.Err())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // ctx's deadline, a moment before ctx notices
			return nil, fmt.Errorf("qmp: %w", context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("qmp: reading the monitor: %w", err)
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("qmp: bad message %q: %w", line, err)
	}
	return &m, nil
}

// Execute runs one command and returns its "return" value; QEMU's refusal
// is an *Error. Events read meanwhile are kept for WaitEvent.
func (q *Conn) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = q.c.SetWriteDeadline(dl)
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		m, err := q.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		switch {
		case m.Event != "":
			q.events = append(q.events, Event{Name: m.Event, Data: m.Data})
		case m.Error != nil:
			return nil, &Error{Command: command, Class: m.Error.Class, Desc: m.Error.Desc}
		default:
			return m.Return, nil
		}
	}
}

// WaitEvent returns the first event named name for which match (nil:
// any) holds, among those already read and those arriving within ctx.
func (q *Conn) WaitEvent(ctx context.Context, name string, match func(data json.RawMessage) bool) (Event, error) {
	for i, ev := range q.events {
		if ev.Name == name && (match == nil || match(ev.Data)) {
			q.events = append(q.events[:i], q.events[i+1:]...)
			return ev, nil
		}
	}
	for {
		m, err := q.read(ctx)
		if err != nil {
			return Event{}, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if m.Event == "" {
			continue
		}
		ev := Event{Name: m.Event, Data: m.Data}
		if ev.Name == name && (match == nil || match(ev.Data)) {
			return ev, nil
		}
		q.events = append(q.events, ev)
	}
}
