package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	gib        = int64(1) << 30
	totalSteps = 10
	fileName   = "hello.txt"
	// modifiedType is the VolumeAttributesClass's type in the modify step,
	// added to the emulator at start on the ssd type's backend.
	modifiedType = "ssd-gold"
)

// step is one line of the summary table.
type step struct {
	n       int
	title   string
	result  string // ok, FAILED, skipped
	detail  string
	latency time.Duration
	calls   int64
}

// lifecycleState is what the steps made, so that cleanup undoes exactly
// that, whichever step failed.
type lifecycleState struct {
	nodeID            string
	volID, restoredID string
	snapID            string
	published         map[string]bool // volume id → ControllerPublish done
	staged            map[string]string
	targets           map[string]string
	publishCtx        map[string]map[string]string
	written           string
	nodeSkipReason    string
}

// volumeCap is what a PVC of volumeMode Filesystem with fsType xfs asks
// for. XFS because it grows online here; ext4 online growth needs
// CAP_SYS_RESOURCE, which containers and this CI machine often lack.
var volumeCap = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "xfs"}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

func (d *demo) runStep(ctx context.Context, title string, f func(ctx context.Context) (string, error)) error {
	s := &step{n: len(d.steps) + 1, title: title}
	d.steps = append(d.steps, s)
	fmt.Fprintf(d.out, "[%d/%d] %s ...\n", s.n, d.stepsTotal(), title)
	before := d.apiCalls()
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, d.opts.timeout)
	detail, err := f(sctx)
	cancel()
	s.latency = time.Since(start)
	s.calls = d.apiCalls() - before
	s.detail = detail
	s.result = "ok"
	if err != nil {
		s.result = "FAILED"
		s.detail = err.Error()
	}
	fmt.Fprintf(d.out, "      %-7s %8s  %3d API calls  %s\n", s.result, fmtDuration(s.latency), s.calls, s.detail)
	if err != nil {
		return fmt.Errorf("step %d (%s): %w", s.n, title, err)
	}
	return nil
}

func (d *demo) skipStep(title, reason string) {
	s := &step{n: len(d.steps) + 1, title: title, result: "skipped", detail: reason}
	d.steps = append(d.steps, s)
	fmt.Fprintf(d.out, "[%d/%d] %s ...\n      skipped  %s\n", s.n, d.stepsTotal(), title, reason)
}

// stepsTotal is the number of steps of the run (Cinder's or Manila's).
func (d *demo) stepsTotal() int {
	if d.total > 0 {
		return d.total
	}
	return totalSteps
}

func fmtDuration(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func (d *demo) lifecycle(ctx context.Context) error {
	st := &d.state
	st.published, st.staged, st.targets, st.publishCtx = map[string]bool{}, map[string]string{}, map[string]string{}, map[string]map[string]string{}
	if !d.root {
		st.nodeSkipReason = fmt.Sprintf("needs root to format and mount loop devices (running as uid %d)", os.Geteuid())
	}
	// What the kubelet learns at plugin registration.
	info, err := d.ns.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetInfo: %w", err)
	}
	st.nodeID = info.GetNodeId()
	fmt.Fprintf(d.out, "node %s, topology %s, at most %d volumes (NodeGetInfo, as at kubelet registration)\n\n", st.nodeID, fmtMap(info.GetAccessibleTopology().GetSegments()), info.GetMaxVolumesPerNode())

	for _, step := range d.lifecycleSteps() {
		if step.needsRoot && !d.root {
			d.skipStep(step.title, st.nodeSkipReason)
			continue
		}
		if err := d.runStep(ctx, step.title, step.run); err != nil {
			return err
		}
	}
	return nil
}

// lifecycleStep is one numbered step of the volume's life.
type lifecycleStep struct {
	title     string
	needsRoot bool // formats or mounts: skipped with nodeSkipReason unless root
	run       func(ctx context.Context) (string, error)
}

// lifecycleSteps are the steps before cleanup, in order; each reads the
// ids the earlier ones left in d.state when it runs.
func (d *demo) lifecycleSteps() []lifecycleStep {
	st := &d.state
	return []lifecycleStep{
		{title: "Create a 1 GiB volume (CreateVolume)", run: d.createVolume},
		{title: "Attach it to the node (ControllerPublishVolume)", run: func(ctx context.Context) (string, error) {
			return d.controllerPublish(ctx, st.volID)
		}},
		{title: "Stage and publish it (NodeStageVolume + NodePublishVolume)", needsRoot: true, run: func(ctx context.Context) (string, error) {
			return d.stageAndPublish(ctx, st.volID)
		}},
		{title: "Write a file into the volume", needsRoot: true, run: d.writeFile},
		{title: "Snapshot it (CreateSnapshot until ready_to_use)", run: d.snapshot},
		{title: "Expand it to 2 GiB (ControllerExpandVolume + NodeExpandVolume)", run: d.expand},
		{title: "Change its volume type while attached (ControllerModifyVolume)", run: d.modify},
		{title: "Restore the snapshot into a new volume (CreateVolume from snapshot)", run: d.restore},
		{title: "Publish the restored volume and read the file back", run: d.readBack},
	}
}

func (d *demo) createVolume(ctx context.Context) (string, error) {
	resp, err := d.cs.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "pvc-csi-demo",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{volumeCap},
		Parameters:         map[string]string{"type": "ssd", "csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "demo"},
	})
	if err != nil {
		return "", err
	}
	d.state.volID = resp.GetVolume().GetVolumeId()
	return fmt.Sprintf("volume %s, %d GiB, type ssd", d.state.volID, resp.GetVolume().GetCapacityBytes()/gib), nil
}

func (d *demo) writeFile(_ context.Context) (string, error) {
	st := &d.state
	content := fmt.Sprintf("written by csi-demo at %s into volume %s\n", time.Now().UTC().Format(time.RFC3339), st.volID)
	path := filepath.Join(st.targets[st.volID], fileName)
	if err := writeSynced(path, content); err != nil {
		return "", err
	}
	st.written = content
	return fmt.Sprintf("%d bytes in %s, synced", len(content), fileName), nil
}

// modify does what the csi-resizer does when the PVC's
// VolumeAttributesClass changes to one with type ssd-gold (on ssd's
// backend: no data moves).
func (d *demo) modify(ctx context.Context) (string, error) {
	volID := d.state.volID
	if _, err := d.cs.ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{
		VolumeId: volID, MutableParameters: map[string]string{"type": modifiedType},
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("Cinder retyped volume %s from ssd to %s; it stayed attached", volID, modifiedType), nil
}

func (d *demo) restore(ctx context.Context) (string, error) {
	st := &d.state
	resp, err := d.cs.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "pvc-csi-demo-restore",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{volumeCap},
		Parameters:         map[string]string{"type": "ssd"},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: st.snapID}}},
	})
	if err != nil {
		return "", err
	}
	st.restoredID = resp.GetVolume().GetVolumeId()
	return fmt.Sprintf("volume %s from snapshot %s, %d GiB", st.restoredID, st.snapID, resp.GetVolume().GetCapacityBytes()/gib), nil
}

func (d *demo) readBack(ctx context.Context) (string, error) {
	st := &d.state
	attached, err := d.controllerPublish(ctx, st.restoredID)
	if err != nil {
		return "", err
	}
	if !d.root {
		return attached + "; stage, publish and read skipped: " + st.nodeSkipReason, nil
	}
	if _, err := d.stageAndPublish(ctx, st.restoredID); err != nil {
		return "", err
	}
	got, err := os.ReadFile(filepath.Join(st.targets[st.restoredID], fileName))
	if err != nil {
		return "", fmt.Errorf("reading the file back: %w", err)
	}
	if string(got) != st.written {
		return "", fmt.Errorf("read back %q, wrote %q", got, st.written)
	}
	return fmt.Sprintf("%s; %s read back intact (%d bytes)", attached, fileName, len(got)), nil
}

func (d *demo) controllerPublish(ctx context.Context, volID string) (string, error) {
	resp, err := d.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: volID, NodeId: d.state.nodeID, VolumeCapability: volumeCap,
	})
	if err != nil {
		return "", err
	}
	d.state.published[volID] = true
	d.state.publishCtx[volID] = resp.GetPublishContext()
	return "attached, publish context " + fmtMap(resp.GetPublishContext()), nil
}

// stageAndPublish does what the kubelet does for a pod: stage at the
// volume's global mount, then bind it into the pod's directory.
func (d *demo) stageAndPublish(ctx context.Context, volID string) (string, error) {
	st := &d.state
	staging := filepath.Join(d.work, "kubelet", "plugins", "kubernetes.io", "csi", "cinder.csi.openstack.org", volID, "globalmount")
	target := filepath.Join(d.work, "kubelet", "pods", "demo-pod", "volumes", "kubernetes.io~csi", volID, "mount")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return "", err
	}
	if _, err := d.ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: volID, StagingTargetPath: staging, VolumeCapability: volumeCap, PublishContext: st.publishCtx[volID],
	}); err != nil {
		return "", fmt.Errorf("NodeStageVolume: %w", err)
	}
	st.staged[volID] = staging
	if _, err := d.ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: volID, StagingTargetPath: staging, TargetPath: target, VolumeCapability: volumeCap, PublishContext: st.publishCtx[volID],
	}); err != nil {
		return "", fmt.Errorf("NodePublishVolume: %w", err)
	}
	st.targets[volID] = target
	return fmt.Sprintf("xfs, %s mounted at the pod's path", fmtGiB(fsSize(target))), nil
}

func (d *demo) snapshot(ctx context.Context) (string, error) {
	st := &d.state
	// The volume is attached: Cinder snapshots an in-use volume only
	// with force, which the VolumeSnapshotClass parameter asks for.
	req := &csi.CreateSnapshotRequest{SourceVolumeId: st.volID, Name: "snapshot-csi-demo", Parameters: map[string]string{"force-create": "true"}}
	polls := 0
	for {
		resp, err := d.cs.CreateSnapshot(ctx, req)
		if err != nil {
			return "", err
		}
		st.snapID = resp.GetSnapshot().GetSnapshotId()
		if resp.GetSnapshot().GetReadyToUse() {
			return fmt.Sprintf("snapshot %s, %d GiB, ready after %d CreateSnapshot call(s)", st.snapID, resp.GetSnapshot().GetSizeBytes()/gib, polls+1), nil
		}
		// The external-snapshotter calls again until ready_to_use.
		polls++
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *demo) expand(ctx context.Context) (string, error) {
	st := &d.state
	resp, err := d.cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: st.volID, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: volumeCap,
	})
	if err != nil {
		return "", fmt.Errorf("ControllerExpandVolume: %w", err)
	}
	detail := fmt.Sprintf("Cinder volume now %d GiB", resp.GetCapacityBytes()/gib)
	if !resp.GetNodeExpansionRequired() {
		return detail + "; no node expansion required", nil
	}
	if !d.root {
		return detail + "; NodeExpandVolume skipped: " + st.nodeSkipReason, nil
	}
	target := st.targets[st.volID]
	if _, err := d.ns.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{
		VolumeId: st.volID, VolumePath: target, StagingTargetPath: st.staged[st.volID],
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: volumeCap,
	}); err != nil {
		return "", fmt.Errorf("NodeExpandVolume: %w", err)
	}
	return fmt.Sprintf("%s; xfs grown online to %s", detail, fmtGiB(fsSize(target))), nil
}

// cleanup is the last step. It undoes whatever the steps made, in the order the
// sidecars and kubelet would (unpublish, unstage, detach, delete), and
// runs after a failed step too.
func (d *demo) cleanup(ctx context.Context) error {
	if d.cs == nil {
		return nil
	}
	for len(d.steps) < totalSteps-1 {
		d.skipStep("(not reached)", "an earlier step failed")
	}
	return d.runStep(ctx, "Clean up: unpublish, unstage, detach, delete", d.undo)
}

// undo unmounts, detaches and deletes what the steps made, then checks
// that the cloud holds nothing.
func (d *demo) undo(ctx context.Context) (string, error) {
	st := &d.state
	errs := d.undoAttachments(ctx)
	var done []string
	if len(st.targets)+len(st.staged) > 0 {
		done = append(done, "unmounted")
	}
	if len(st.published) > 0 {
		done = append(done, fmt.Sprintf("%d detached", len(st.published)))
	}
	// The restored volume first: Cinder keeps a snapshot's source
	// volume while the snapshot exists.
	if st.restoredID != "" {
		errs = append(errs, d.deleteVolume(ctx, st.restoredID))
	}
	if st.snapID != "" {
		if _, err := d.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: st.snapID}); err != nil {
			errs = append(errs, fmt.Errorf("DeleteSnapshot: %w", err))
		} else {
			done = append(done, "snapshot deleted")
		}
	}
	if st.volID != "" {
		errs = append(errs, d.deleteVolume(ctx, st.volID))
	}
	if st.restoredID != "" || st.volID != "" {
		done = append(done, "volumes deleted")
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	held, err := d.cloudHolds()
	if err != nil {
		return "", err
	}
	if held != "" {
		return "", fmt.Errorf("the cloud still holds %s", held)
	}
	return strings.Join(done, ", ") + "; the cloud holds nothing", nil
}

// undoAttachments unpublishes, unstages and detaches each volume, as the
// kubelet and the attacher would.
func (d *demo) undoAttachments(ctx context.Context) []error {
	st := &d.state
	var errs []error
	for _, vol := range []string{st.restoredID, st.volID} {
		if vol == "" {
			continue
		}
		if t := st.targets[vol]; t != "" {
			if _, err := d.ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: t}); err != nil {
				errs = append(errs, fmt.Errorf("NodeUnpublishVolume %s: %w", vol, err))
			}
		}
		if s := st.staged[vol]; s != "" {
			if _, err := d.ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: s}); err != nil {
				errs = append(errs, fmt.Errorf("NodeUnstageVolume %s: %w", vol, err))
			}
		}
		if st.published[vol] {
			if _, err := d.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: st.nodeID}); err != nil {
				errs = append(errs, fmt.Errorf("ControllerUnpublishVolume %s: %w", vol, err))
			}
		}
	}
	return errs
}

// deleteVolume retries as the external-provisioner does: Aborted and
// Unavailable mean Cinder is still busy (here: deleting the snapshot the
// volume depends on), and the call is repeated with a growing backoff.
func (d *demo) deleteVolume(ctx context.Context, id string) error {
	wait := 250 * time.Millisecond
	for {
		_, err := d.cs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
		if err == nil {
			return nil
		}
		if c := status.Code(err); c != codes.Aborted && c != codes.Unavailable {
			return fmt.Errorf("DeleteVolume %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DeleteVolume %s: %w", id, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// cloudHolds asks the emulator's admin API what it still holds.
func (d *demo) cloudHolds() (string, error) {
	resp, err := http.Get(d.emuURL + "/admin/state")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var state map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		return "", err
	}
	var held []string
	for _, kind := range []string{"volumes", "snapshots", "backups", "attachments"} {
		var items []any
		_ = json.Unmarshal(state[kind], &items)
		if len(items) > 0 {
			held = append(held, fmt.Sprintf("%d %s", len(items), kind))
		}
	}
	return strings.Join(held, ", "), nil
}

func (d *demo) summary() {
	if len(d.steps) == 0 {
		return
	}
	fmt.Fprintf(d.out, "\n %-2s  %-68s %-8s %8s %9s\n", "#", "step", "result", "latency", "API calls")
	var total time.Duration
	var calls int64
	for _, s := range d.steps {
		fmt.Fprintf(d.out, " %-2d  %-68s %-8s %8s %9d\n", s.n, s.title, s.result, fmtDuration(s.latency), s.calls)
		total += s.latency
		calls += s.calls
	}
	fmt.Fprintf(d.out, "     %-68s %-8s %8s %9d\n", "total", "", fmtDuration(total), calls)
}

func writeSynced(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		_ = f.Close()
		return err
	}
	// fsync, then syncfs: the data reaches the volume before the
	// snapshot, as an application-consistent snapshot would need.
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func fsSize(path string) int64 {
	var s unix.Statfs_t
	if unix.Statfs(path, &s) != nil {
		return 0
	}
	return int64(s.Blocks) * s.Bsize
}

func fmtGiB(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/float64(gib)) }

func fmtMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
