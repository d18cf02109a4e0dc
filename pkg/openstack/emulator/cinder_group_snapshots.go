package emulator

import (
	"fmt"
	"net/http"
	"sort"
	"time"
)

func (e *Emulator) groupSnapshotBody(gs *groupSnapshot) map[string]any {
	var desc any
	if gs.Description != "" {
		desc = gs.Description
	}
	return map[string]any{"id": gs.ID, "group_id": gs.GroupID, "group_type_id": gs.GroupTypeID, "status": gs.Status,
		"created_at": ctime(gs.CreatedAt), "name": gs.Name, "description": desc}
}

func (e *Emulator) visibleGroupSnapshotLocked(q *req, id string) *groupSnapshot {
	e.ensureGroupMapsLocked()
	return visibleLocked(q, e.st.GroupSnapshots, "GroupSnapshot", id)
}

// createGroupSnapshot snapshots every member of an available group: the
// group snapshot and one member snapshot per volume (named and described
// like the group snapshot) start "creating" and turn available together,
// as Zed's generic implementation leaves them.
func (e *Emulator) createGroupSnapshot(q *req) {
	var body struct {
		GroupSnapshot *struct {
			GroupID     string `json:"group_id"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"group_snapshot"`
	}
	if !decodeBody(q, &body) {
		return
	}
	in := body.GroupSnapshot
	if in == nil || in.GroupID == "" {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute group_snapshot. 'group_id' is a required property")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.visibleGroupLocked(q, in.GroupID)
	if g == nil {
		return
	}
	vols := e.volumesOfGroupLocked(g.ID)
	if len(vols) == 0 || g.Status == "creating" || g.Status == "updating" {
		writeError(q.w, http.StatusBadRequest, "Invalid Group: Source group cannot be empty or in 'creating' or 'updating' state. No group snapshot will be created.")
		return
	}
	if !e.membersSnapshottableLocked(q, g.ProjectID, vols) {
		return
	}
	now := time.Now().UTC()
	gs := &groupSnapshot{ID: newUUID(), Name: in.Name, Description: in.Description, Status: "creating", GroupID: g.ID,
		GroupTypeID: g.GroupTypeID, ProjectID: g.ProjectID, UserID: q.tok.UserID, CreatedAt: now, UpdatedAt: now}
	e.st.GroupSnapshots[gs.ID] = gs
	type member struct{ id, src string }
	var members []member
	for _, v := range vols {
		s := &snapshot{ID: newUUID(), Name: in.Name, Description: in.Description, Status: "creating", VolumeID: v.ID,
			Size: v.Size, ProjectID: v.ProjectID, UserID: q.tok.UserID, Metadata: map[string]string{},
			CreatedAt: now, UpdatedAt: now, GroupSnapshotID: gs.ID}
		e.st.Snapshots[s.ID] = s
		members = append(members, member{s.ID, v.DataFile})
	}
	e.markDirty()
	id := gs.ID
	e.later("group_snapshot_create", 1, func() {
		for _, m := range members {
			e.finishSnapshot(m.id, m.src)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		gs := e.st.GroupSnapshots[id]
		if gs == nil || gs.Status != "creating" {
			return
		}
		gs.Status = "available"
		for _, m := range members {
			if s := e.st.Snapshots[m.id]; s == nil || s.Status != "available" {
				gs.Status = "error"
			}
		}
		gs.UpdatedAt = time.Now().UTC()
		e.markDirty()
	})
	writeJSON(q.w, http.StatusAccepted, map[string]any{"group_snapshot": map[string]any{"id": gs.ID, "name": gs.Name, "group_type_id": gs.GroupTypeID}})
}

// membersSnapshottableLocked answers 400 for a member in error or
// maintenance and 413 when the project's quota cannot take a snapshot of
// every member; false means it has answered.
func (e *Emulator) membersSnapshottableLocked(q *req, projectID string, vols []*volume) bool {
	size := 0
	for _, v := range vols {
		if v.Status == "error" {
			writeError(q.w, http.StatusBadRequest, "Invalid volume: The snapshot cannot be created when the volume is in error status.")
			return false
		}
		if v.Status == "maintenance" {
			writeError(q.w, http.StatusBadRequest, "Invalid volume: The snapshot cannot be created when the volume is in maintenance mode.")
			return false
		}
		size += v.Size
	}
	// Zed reserves one snapshot per member at once.
	if qt, u := e.quotaLocked(projectID), e.usageLocked(projectID); qt.Snapshots >= 0 && u.snapshots+len(vols) > qt.Snapshots {
		overLimit(q, fmt.Sprintf("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded", qt.Snapshots))
		return false
	}
	return e.checkQuotaLocked(q, projectID, "snapshots", size)
}

func (e *Emulator) getGroupSnapshot(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gs := e.visibleGroupSnapshotLocked(q, q.p("group_snapshot_id")); gs != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"group_snapshot": e.groupSnapshotBody(gs)})
	}
}

var groupSnapshotFilters = map[string]bool{"name": true, "status": true, "group_id": true}

func (e *Emulator) listGroupSnapshots(q *req, detail bool) {
	lq, ok := parseListQuery(q, groupSnapshotFilters)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ensureGroupMapsLocked()
	var items []sortable
	for _, gs := range e.st.GroupSnapshots {
		if gs.ProjectID != q.tok.ProjectID || !lq.matchText("name", gs.Name) || !lq.matchText("status", gs.Status) || !lq.matchText("group_id", gs.GroupID) {
			continue
		}
		item := any(map[string]any{"id": gs.ID, "name": gs.Name})
		if detail {
			item = e.groupSnapshotBody(gs)
		}
		items = append(items, sortable{id: gs.ID, createdAt: gs.CreatedAt, updatedAt: gs.UpdatedAt,
			fields: map[string]string{"name": gs.Name, "status": gs.Status}, item: item})
	}
	lq.writePage(q, items, "group_snapshots", detail, nil)
}

// deleteGroupSnapshot deletes the group snapshot with its members.
func (e *Emulator) deleteGroupSnapshot(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	gs := e.visibleGroupSnapshotLocked(q, q.p("group_snapshot_id"))
	if gs == nil {
		return
	}
	if gs.Status != "available" && gs.Status != "error" {
		writeError(q.w, http.StatusBadRequest, "Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation.")
		return
	}
	gs.Status = "deleting"
	gs.UpdatedAt = time.Now().UTC()
	for _, s := range e.st.Snapshots {
		if s.GroupSnapshotID == gs.ID {
			s.Status = "deleting"
		}
	}
	e.markDirty()
	id := gs.ID
	e.later("group_snapshot_delete", 1, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		gs := e.st.GroupSnapshots[id]
		if gs == nil || gs.Status != "deleting" {
			return
		}
		for sid, s := range e.st.Snapshots {
			if s.GroupSnapshotID == id {
				removeFile(s.DataFile)
				delete(e.st.Snapshots, sid)
			}
		}
		delete(e.st.GroupSnapshots, id)
		e.markDirty()
	})
	q.w.WriteHeader(http.StatusAccepted)
}

// GroupCounts reports the groups and group snapshots the emulator holds,
// for leak checks.
func (e *Emulator) GroupCounts() (groups, groupSnapshots int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.st.Groups), len(e.st.GroupSnapshots)
}

// VolumeGroupID returns the group a volume is in ("" for none or no such
// volume), for tests.
func (e *Emulator) VolumeGroupID(volumeID string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.st.Volumes[volumeID]; v != nil {
		return v.GroupID
	}
	return ""
}

// GroupIDs and GroupSnapshotIDs list what the emulator holds, sorted, for
// leak checks (nil when none).
func (e *Emulator) GroupIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sortedKeysOf(e.st.Groups)
}

// GroupSnapshotIDs returns the ids of the group snapshots, sorted, for
// leak checks (nil when none).
func (e *Emulator) GroupSnapshotIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sortedKeysOf(e.st.GroupSnapshots)
}

func sortedKeysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
