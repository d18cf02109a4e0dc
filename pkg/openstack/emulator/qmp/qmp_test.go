package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/qmp"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/qmp/qmptest"
)

func TestCommandsErrorsAndEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := qmptest.New(t)
	m.Fail("bad", "nope")
	q, err := qmp.Dial(ctx, m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var qe *qmp.Error
	if _, err := q.Execute(ctx, "bad", nil); !errors.As(err, &qe) || qe.Desc != "nope" {
		t.Fatalf("refused command: %v", err)
	}
	if _, err := q.Execute(ctx, "device_del", map[string]any{"id": "d1"}); err != nil {
		t.Fatal(err)
	}
	ev, err := q.WaitEvent(ctx, "DEVICE_DELETED", func(d json.RawMessage) bool { return strings.Contains(string(d), `"device":"d1"`) })
	if err != nil || !strings.Contains(string(ev.Data), `"device"`) {
		t.Fatalf("event %+v %v", ev, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := q.WaitEvent(short, "NEVER", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past the deadline: %v", err)
	}
}
