package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// emuState is GET /admin/state of the emulator (docs/emulator.md).
type emuState struct {
	Volumes     []emulator.VolumeView     `json:"volumes"`
	Snapshots   []emulator.SnapshotView   `json:"snapshots"`
	Backups     []emulator.BackupView     `json:"backups"`
	Attachments []emulator.AttachmentView `json:"attachments"`
	Servers     []emulator.ServerView     `json:"servers"`
	// Groups and GroupSnapshots are ids: what the VolumeGroupSnapshot
	// flow must leave behind is nothing.
	Groups         []string `json:"groups"`
	GroupSnapshots []string `json:"group_snapshots"`
}

func (s *emuState) volume(id string) *emulator.VolumeView {
	for i := range s.Volumes {
		if s.Volumes[i].ID == id {
			return &s.Volumes[i]
		}
	}
	return nil
}

func (s *emuState) empty() bool {
	return len(s.Volumes)+len(s.Snapshots)+len(s.Backups)+len(s.Attachments)+len(s.Groups)+len(s.GroupSnapshots) == 0
}

func (s *emuState) String() string {
	return fmt.Sprintf("%d volumes, %d snapshots, %d backups, %d attachments, %d groups, %d group snapshots",
		len(s.Volumes), len(s.Snapshots), len(s.Backups), len(s.Attachments), len(s.Groups), len(s.GroupSnapshots))
}

// admin calls the emulator's admin API; out may be nil.
func admin(ctx context.Context, base, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (d *driver) state(ctx context.Context) (*emuState, error) {
	if d.real != nil {
		return d.real.state(ctx)
	}
	var s emuState
	return &s, admin(ctx, d.emulatorURL, http.MethodGet, "/admin/state", nil, &s)
}

// faults replaces the emulator's fault settings (PUT /admin/faults).
func (d *driver) faults(ctx context.Context, f map[string]any) error {
	return admin(ctx, d.emulatorURL, http.MethodPut, "/admin/faults", f, nil)
}

func (d *driver) counters(ctx context.Context) (map[string]int, error) {
	var c struct {
		Counters map[string]int `json:"counters"`
	}
	return c.Counters, admin(ctx, d.emulatorURL, http.MethodGet, "/admin/counters", nil, &c)
}
