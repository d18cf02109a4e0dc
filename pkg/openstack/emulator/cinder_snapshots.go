package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

func (e *Emulator) cinderSnapshotRoutes(add addFunc) {
	add("POST", svcVolume, "/volume/v3/{project_id}/snapshots", false, (*Emulator).createSnapshot)
	add("GET", svcVolume, "/volume/v3/{project_id}/snapshots", false, (*Emulator).listSnapshots)
	add("GET", svcVolume, "/volume/v3/{project_id}/snapshots/detail", false, (*Emulator).listSnapshotsDetail)
	add("GET", svcVolume, "/volume/v3/{project_id}/snapshots/{snapshot_id}", false, (*Emulator).getSnapshot)
	add("PUT", svcVolume, "/volume/v3/{project_id}/snapshots/{snapshot_id}", false, (*Emulator).updateSnapshot)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/snapshots/{snapshot_id}", false, (*Emulator).deleteSnapshot)
	add("GET", svcVolume, "/volume/v3/{project_id}/snapshots/{snapshot_id}/metadata", false, (*Emulator).getSnapshotMetadata)
}

func (e *Emulator) snapshotBodyLocked(s *snapshot, q *req) map[string]any {
	b := map[string]any{
		"id": s.ID, "name": s.Name, "description": s.Description, "status": s.Status, "volume_id": s.VolumeID,
		"size": s.Size, "created_at": ctime(s.CreatedAt), "updated_at": ctime(s.UpdatedAt), "metadata": copyMap(s.Metadata),
		"os-extended-snapshot-attributes:project_id": s.ProjectID, "os-extended-snapshot-attributes:progress": progressOf(s.Status),
	}
	if q.mv.AtLeast("3.14") {
		b["group_snapshot_id"] = nilIfEmpty(s.GroupSnapshotID)
	}
	if q.mv.AtLeast("3.41") {
		b["user_id"] = s.UserID
	}
	if q.mv.AtLeast("3.65") {
		b["consumes_quota"] = true
	}
	return b
}

func progressOf(status string) string {
	if status == "available" {
		return "100%"
	}
	return "0%"
}

func (e *Emulator) visibleSnapshotLocked(q *req, id string) *snapshot {
	return visibleLocked(q, e.st.Snapshots, "Snapshot", id)
}

// parseBool follows oslo's strutils.bool_from_string for request flags.
func parseBool(v any) (bool, bool) {
	switch t := v.(type) {
	case nil:
		return false, true
	case bool:
		return t, true
	case string:
		b, err := strconv.ParseBool(strings.ToLower(t))
		if err != nil {
			switch strings.ToLower(t) {
			case "yes", "on", "y":
				return true, true
			case "no", "off", "n":
				return false, true
			}
			return false, false
		}
		return b, true
	}
	return false, false
}

func (e *Emulator) createSnapshot(q *req) {
	var body struct {
		Snapshot *struct {
			VolumeID    string            `json:"volume_id"`
			Name        string            `json:"name"`
			Description string            `json:"description"`
			Force       any               `json:"force"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"snapshot"`
	}
	if !decodeBody(q, &body) {
		return
	}
	in := body.Snapshot
	if in == nil || in.VolumeID == "" {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute snapshot. 'volume_id' is a required property")
		return
	}
	force, ok := parseBool(in.Force)
	if !ok {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid value '%v' for force.", in.Force))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, in.VolumeID)
	if v == nil {
		return
	}
	// From 3.66 snapshots of in-use volumes need no force flag.
	inUseOK := force || q.mv.AtLeast("3.66")
	if snapshottable := v.Status == "available" || inUseOK && v.Status == "in-use"; !snapshottable {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: Volume %s status must be available, but current status is: %s.", v.ID, v.Status))
		return
	}
	if !e.checkQuotaLocked(q, v.ProjectID, "snapshots", v.Size) {
		return
	}
	now := time.Now().UTC()
	s := &snapshot{ID: newUUID(), Name: in.Name, Description: in.Description, Status: "creating", VolumeID: v.ID,
		Size: v.Size, ProjectID: v.ProjectID, UserID: q.tok.UserID, Metadata: copyMap(in.Metadata), CreatedAt: now, UpdatedAt: now}
	e.st.Snapshots[s.ID] = s
	e.markDirty()
	id, src := s.ID, v.DataFile
	e.later("snapshot_create", 1, func() { e.finishSnapshot(id, src) })
	writeJSON(q.w, http.StatusAccepted, map[string]any{"snapshot": e.snapshotBodyLocked(s, q)})
}

func (e *Emulator) finishSnapshot(id, src string) {
	dst := e.dataPath("snapshot", id)
	var err error
	if src != "" {
		err = copySparse(src, dst)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st.Snapshots[id]
	if s == nil || s.Status != "creating" {
		removeFile(dst)
		return
	}
	s.UpdatedAt = time.Now().UTC()
	e.markDirty()
	if err != nil {
		klog.ErrorS(err, "emulator: copying snapshot data", "snapshotID", id)
		s.Status = "error"
		e.addMessageLocked(s.ProjectID, "SNAPSHOT", s.ID, "", "004", "create snapshot", "001", "An unknown error occurred.")
		return
	}
	if src != "" {
		s.DataFile = dst
	}
	s.Status = "available"
}

func (e *Emulator) getSnapshot(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.visibleSnapshotLocked(q, q.p("snapshot_id")); s != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"snapshot": e.snapshotBodyLocked(s, q)})
	}
}

func (e *Emulator) getSnapshotMetadata(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.visibleSnapshotLocked(q, q.p("snapshot_id")); s != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"metadata": copyMap(s.Metadata)})
	}
}

func (e *Emulator) updateSnapshot(q *req) {
	var body struct {
		Snapshot *struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
		} `json:"snapshot"`
	}
	if !decodeBody(q, &body) {
		return
	}
	if body.Snapshot == nil {
		writeError(q.w, http.StatusBadRequest, "Missing required element 'snapshot' in request body.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.visibleSnapshotLocked(q, q.p("snapshot_id"))
	if s == nil {
		return
	}
	if body.Snapshot.Name != nil {
		s.Name = *body.Snapshot.Name
	}
	if body.Snapshot.Description != nil {
		s.Description = *body.Snapshot.Description
	}
	s.UpdatedAt = time.Now().UTC()
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"snapshot": e.snapshotBodyLocked(s, q)})
}

var snapshotFilters = map[string]bool{"name": true, "status": true, "volume_id": true, "metadata": true, "availability_zone": true}

func (e *Emulator) listSnapshots(q *req)       { e.listSnapshotsCommon(q, false) }
func (e *Emulator) listSnapshotsDetail(q *req) { e.listSnapshotsCommon(q, true) }

func (e *Emulator) listSnapshotsCommon(q *req, detail bool) {
	lq, ok := parseListQuery(q, snapshotFilters)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []sortable
	for _, s := range e.st.Snapshots {
		if s.ProjectID != q.tok.ProjectID || !lq.matchText("name", s.Name) || !lq.matchText("status", s.Status) || !lq.matchText("volume_id", s.VolumeID) {
			continue
		}
		okMD, err := lq.matchMetadata(s.Metadata)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, "Invalid metadata filter: "+err.Error())
			return
		}
		if !okMD {
			continue
		}
		// Cinder's summary and detail views of snapshots carry the same core fields.
		items = append(items, sortable{id: s.ID, createdAt: s.CreatedAt, updatedAt: s.UpdatedAt, size: s.Size,
			fields: map[string]string{"name": s.Name, "status": s.Status, "volume_id": s.VolumeID}, item: e.snapshotBodyLocked(s, q)})
	}
	lq.writePage(q, items, "snapshots", detail, nil)
}

func (e *Emulator) deleteSnapshot(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.visibleSnapshotLocked(q, q.p("snapshot_id"))
	if s == nil {
		return
	}
	if s.GroupSnapshotID != "" {
		// Zed's conditional update words it differently for a member.
		writeError(q.w, http.StatusBadRequest, "Invalid snapshot: Snapshot status must be available or error and must not be part of a group.")
		return
	}
	// Zed refuses error_deleting too unless forced (volume/api.py
	// delete_snapshot: status must be available or error).
	if s.Status != "available" && s.Status != "error" {
		writeError(q.w, http.StatusBadRequest, "Invalid snapshot: Volume Snapshot status must be available or error and must not be part of a group.")
		return
	}
	s.Status = "deleting"
	s.UpdatedAt = time.Now().UTC()
	e.markDirty()
	dropLater(e, "snapshot_delete", e.st.Snapshots, s.ID)
	q.w.WriteHeader(http.StatusAccepted)
}
