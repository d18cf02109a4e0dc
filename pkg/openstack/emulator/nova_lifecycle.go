package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Server lifecycle beyond the fixed nodes: a server that boots (BUILD until
// a test says ACTIVE, so the attach-while-booting race is deterministic),
// Nova's server delete, and Cinder's attachment delete. Peer-pod tests use
// them for the pod VM, which cloud-api-adaptor creates and deletes.

func (e *Emulator) lifecycleRoutes(add addFunc) {
	add("DELETE", svcCompute, "/compute/v2.1/servers/{server_id}", false, (*Emulator).deleteServerRoute)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/attachments/{attachment_id}", false, (*Emulator).deleteAttachmentRoute)
}

// AddBootingServer registers a server in status BUILD: Nova refuses to
// attach to it (409) until SetServerStatus makes it ACTIVE.
func (e *Emulator) AddBootingServer(s ServerSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addServerLocked(s, time.Now().UTC())
	e.st.Servers[s.ID].Status = "BUILD"
	e.markDirty()
}

// SetServerStatus sets a server's status (BUILD, ACTIVE, ERROR, SHUTOFF).
func (e *Emulator) SetServerStatus(serverID, status string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.st.Servers[serverID]; ok {
		s.Status = status
		e.markDirty()
	}
}

// DeleteServer deletes a server the way Nova does: its volumes are
// detached (unplugged: the loop device, or the disk of a guest server) and
// their Cinder attachments removed. With
// orphanAttachments the Cinder attachments stay behind, naming a server
// that no longer exists: what a Nova delete whose volume cleanup failed
// leaves, and what the peer-pod reconciler must clean up.
func (e *Emulator) DeleteServer(serverID string, orphanAttachments bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deleteServerLocked(serverID, orphanAttachments)
}

func (e *Emulator) deleteServerLocked(serverID string, orphan bool) bool {
	if _, ok := e.st.Servers[serverID]; !ok {
		return false
	}
	for _, a := range e.st.attachmentsOfServer(serverID) {
		if a.LoopDevice != "" {
			e.unplug(a)
		}
		if a.GuestDevice != "" {
			// The QEMU of a deleted server lets go of the disk.
			e.unplugFromGuestLocked(a)
		}
		if orphan {
			continue
		}
		delete(e.st.Attachments, a.ID)
		if v := e.st.Volumes[a.VolumeID]; v != nil {
			e.recomputeVolumeStatusLocked(v)
		}
	}
	delete(e.st.Servers, serverID)
	e.st.ServerOrder = slices.DeleteFunc(e.st.ServerOrder, func(id string) bool { return id == serverID })
	e.markDirty()
	return true
}

func (e *Emulator) deleteServerRoute(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.serverLocked(q, q.p("server_id")); s == nil {
		return
	}
	e.deleteServerLocked(q.p("server_id"), false)
	q.w.WriteHeader(http.StatusNoContent)
}

// deleteAttachmentRoute is Cinder's DELETE /attachments/{id} (3.27): it
// removes the attachment record whatever Nova thinks, which is how a
// volume attached to a server that no longer exists is freed.
func (e *Emulator) deleteAttachmentRoute(q *req) {
	if !q.mv.AtLeast("3.27") {
		writeError(q.w, http.StatusNotFound, "The resource could not be found.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id := q.p("attachment_id")
	a := e.st.Attachments[id]
	if a == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("VolumeAttachment %s could not be found.", id))
		return
	}
	v := e.st.Volumes[a.VolumeID]
	if v == nil || v.ProjectID != q.tok.ProjectID {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("VolumeAttachment %s could not be found.", id))
		return
	}
	if a.LoopDevice != "" {
		e.unplug(a)
	}
	delete(e.st.Attachments, id)
	e.recomputeVolumeStatusLocked(v)
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"attachments": []any{}})
}
