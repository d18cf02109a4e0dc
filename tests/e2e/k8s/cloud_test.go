package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// E2E_K8S_CLOUD=openstack runs the flows against the real OpenStack of
// `make e2e-openstack` (the openstack-rig) instead of the emulator:
// hack/e2e-openstack.sh sets it, with the project, member user, node
// servers and cloud.conf it made (rig.Require reads them).
const cloudOpenStack = "openstack"

func realCloudMode() bool { return os.Getenv("E2E_K8S_CLOUD") == cloudOpenStack }

// realCloud reads the state the flows check from real Cinder and Nova
// through their APIs, as the project's member (what the driver sees), in
// the same shape as the emulator's /admin/state so the flows do not care
// which cloud they run on.
type realCloud struct {
	env *rig.Env
	c   *rig.Client
	// baseline holds the ids of what was in the project before the run:
	// left out of every state, so "empty" means "nothing of ours left".
	baseline map[string]bool
}

func newRealCloud(ctx context.Context, t testing.TB) (*realCloud, error) {
	env := rig.Require(t)
	c, err := env.Login(ctx)
	if err != nil {
		return nil, fmt.Errorf("login as %s in %s: %w", env.User, env.Project, err)
	}
	rc := &realCloud{env: env, c: c}
	st, err := rc.state(ctx)
	if err != nil {
		return nil, err
	}
	rc.baseline = map[string]bool{}
	for _, v := range st.Volumes {
		rc.baseline[v.ID] = true
	}
	for _, s := range st.Snapshots {
		rc.baseline[s.ID] = true
	}
	for _, b := range st.Backups {
		rc.baseline[b.ID] = true
	}
	for _, id := range append(st.Groups, st.GroupSnapshots...) {
		rc.baseline[id] = true
	}
	if len(rc.baseline) > 0 {
		t.Logf("real cloud: %d objects already in project %s before the run (ignored)", len(rc.baseline), env.Project)
	}
	return rc, nil
}

func (rc *realCloud) get(ctx context.Context, svc rig.Service, path string, out any) error {
	r, err := rc.c.Do(ctx, svc, "GET", path, "", nil)
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, r.Status, r.Body)
	}
	return json.Unmarshal(r.Body, out)
}

// state lists the project's volumes (with their Nova attachments and the
// hot-plugged device behind each), snapshots and backups, and node1.
func (rc *realCloud) state(ctx context.Context) (*emuState, error) {
	var vols struct {
		Volumes []struct {
			ID, Name, Status string
			Size             int
			AZ               string `json:"availability_zone"`
			VolumeType       string `json:"volume_type"`
			Metadata         map[string]string
			SnapshotID       string `json:"snapshot_id"`
			SourceVolID      string `json:"source_volid"`
			Multiattach      bool   `json:"multiattach"`
			Attachments      []struct {
				ServerID     string `json:"server_id"`
				AttachmentID string `json:"attachment_id"`
				Device       string `json:"device"`
			}
		}
	}
	if err := rc.get(ctx, rig.Volume, "/volumes/detail", &vols); err != nil {
		return nil, err
	}
	var snaps struct {
		Snapshots []struct {
			ID, Name, Status string
			VolumeID         string `json:"volume_id"`
			Size             int
			Metadata         map[string]string
		}
	}
	if err := rc.get(ctx, rig.Volume, "/snapshots/detail", &snaps); err != nil {
		return nil, err
	}
	var backups struct {
		Backups []struct {
			ID, Name, Status string
			VolumeID         string `json:"volume_id"`
			SnapshotID       string `json:"snapshot_id"`
			Size             int
		}
	}
	if err := rc.get(ctx, rig.Volume, "/backups/detail", &backups); err != nil {
		return nil, err
	}
	var srv struct {
		Server struct {
			ID, Name string
			AZ       string `json:"OS-EXT-AZ:availability_zone"`
		}
	}
	if err := rc.get(ctx, rig.Compute, "/servers/"+url.PathEscape(rc.env.Node1), &srv); err != nil {
		return nil, err
	}
	st := &emuState{Servers: []emulator.ServerView{{ID: srv.Server.ID, Name: srv.Server.Name, AZ: srv.Server.AZ, Local: true}}}
	for _, v := range vols.Volumes {
		if rc.baseline[v.ID] {
			continue
		}
		vv := emulator.VolumeView{ID: v.ID, Name: v.Name, Status: v.Status, SizeGiB: v.Size, AZ: v.AZ,
			VolumeType: v.VolumeType, Metadata: v.Metadata, Multiattach: v.Multiattach,
			SnapshotID: v.SnapshotID, SourceVolID: v.SourceVolID, ProjectID: rc.c.ProjectID}
		for _, a := range v.Attachments {
			vv.Attachments = append(vv.Attachments, a.ServerID)
			av := emulator.AttachmentView{ID: a.AttachmentID, ServerID: a.ServerID, VolumeID: v.ID, Status: v.Status, Device: a.Device}
			// The rig's hot-plug: the by-id link a virtio guest's udev
			// would make, to the loop device over the RBD image.
			if len(v.ID) >= 20 {
				if dev, err := filepath.EvalSymlinks(filepath.Join(rc.env.DevRoot, "disk", "by-id", "virtio-"+v.ID[:20])); err == nil {
					av.LoopDevice = dev
				}
			}
			st.Attachments = append(st.Attachments, av)
		}
		st.Volumes = append(st.Volumes, vv)
	}
	for _, s := range snaps.Snapshots {
		if !rc.baseline[s.ID] {
			st.Snapshots = append(st.Snapshots, emulator.SnapshotView{ID: s.ID, Name: s.Name, Status: s.Status,
				VolumeID: s.VolumeID, SizeGiB: s.Size, Metadata: s.Metadata, ProjectID: rc.c.ProjectID})
		}
	}
	for _, b := range backups.Backups {
		if !rc.baseline[b.ID] {
			st.Backups = append(st.Backups, emulator.BackupView{ID: b.ID, Name: b.Name, Status: b.Status,
				VolumeID: b.VolumeID, SnapshotID: b.SnapshotID, SizeGiB: b.Size, ProjectID: rc.c.ProjectID})
		}
	}
	var err error
	if st.Groups, err = rc.ids(ctx, "groups"); err != nil {
		return nil, err
	}
	if st.GroupSnapshots, err = rc.ids(ctx, "group_snapshots"); err != nil {
		return nil, err
	}
	return st, nil
}

// ids lists the project's Cinder groups or group snapshots (block-storage
// 3.14), leaving out the baseline.
func (rc *realCloud) ids(ctx context.Context, kind string) ([]string, error) {
	r, err := rc.c.Do(ctx, rig.Volume, "GET", "/"+kind, "3.14", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("GET /%s: HTTP %d: %s", kind, r.Status, r.Body)
	}
	var out []string
	list, _ := r.JSON()[kind].([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		if id, _ := m["id"].(string); id != "" && !rc.baseline[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// purge removes what a failed run left in the project (after every
// process has stopped): Nova detaches, then snapshots, then volumes,
// until nothing of ours is left or the time is up. It returns what it
// found at first, for the report.
func (rc *realCloud) purge(ctx context.Context, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	first := ""
	for {
		st, err := rc.state(ctx)
		if err != nil {
			return first, err
		}
		if first == "" {
			first = st.String()
		}
		if st.empty() {
			return first, nil
		}
		for _, a := range st.Attachments {
			_, _ = rc.c.Do(ctx, rig.Compute, "DELETE", "/servers/"+a.ServerID+"/os-volume_attachments/"+a.VolumeID, "", nil)
		}
		// A group snapshot's member snapshots go only with it, and a
		// group only once it has no group snapshot.
		for _, gs := range st.GroupSnapshots {
			_, _ = rc.c.Do(ctx, rig.Volume, "DELETE", "/group_snapshots/"+gs, "3.14", nil)
		}
		if len(st.GroupSnapshots) == 0 {
			for _, g := range st.Groups {
				_, _ = rc.c.Do(ctx, rig.Volume, "POST", "/groups/"+g+"/action", "3.13", map[string]any{"delete": map[string]any{"delete-volumes": false}})
			}
		}
		for _, b := range st.Backups {
			if b.Status != "deleting" {
				_, _ = rc.c.Do(ctx, rig.Volume, "DELETE", "/backups/"+b.ID, "", nil)
			}
		}
		for _, s := range st.Snapshots {
			if s.Status != "deleting" {
				_, _ = rc.c.Do(ctx, rig.Volume, "DELETE", "/snapshots/"+s.ID, "", nil)
			}
		}
		if len(st.Snapshots)+len(st.Backups) == 0 {
			for _, v := range st.Volumes {
				if v.Status == "available" || v.Status == "error" {
					_, _ = rc.c.Do(ctx, rig.Volume, "DELETE", "/volumes/"+v.ID, "", nil)
				}
			}
		}
		select {
		case <-ctx.Done():
			return first, fmt.Errorf("still left after %s: %v", timeout, st)
		case <-time.After(2 * time.Second):
		}
	}
}
