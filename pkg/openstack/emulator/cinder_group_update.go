package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// validAddStatus and validRemoveStatus are Zed's
// VALID_ADD_VOL_TO_GROUP_STATUS and VALID_REMOVE_VOL_FROM_GROUP_STATUS.
var (
	validAddStatus    = map[string]bool{"available": true, "in-use": true}
	validRemoveStatus = map[string]bool{"available": true, "in-use": true, "error": true, "error_deleting": true}
)

func splitIDs(s string) []string {
	s = strings.Trim(s, ",")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// updateGroup is PUT /groups/<id>: name, description, add_volumes and
// remove_volumes (comma lists), validated as Zed's group API.update.
func (e *Emulator) updateGroup(q *req) {
	var body struct {
		Group map[string]any `json:"group"`
	}
	if !decodeBody(q, &body) {
		return
	}
	in := body.Group
	if len(in) == 0 {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute group. Value: %s. %s is not valid under any of the given schemas", pyRepr(in), pyRepr(in)))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.visibleGroupLocked(q, q.p("group_id"))
	if g == nil {
		return
	}
	str := func(k string) (string, bool) { s, ok := in[k].(string); return s, ok }
	name, hasName := str("name")
	desc, hasDesc := str("description")
	addRaw, _ := str("add_volumes")
	remRaw, _ := str("remove_volumes")
	if hasName && name == g.Name {
		hasName = false
	}
	if hasDesc && desc == g.Description {
		hasDesc = false
	}
	add, rem := splitIDs(addRaw), splitIDs(remRaw)
	for _, id := range add {
		if slices.Contains(rem, id) {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: UUIDs ['%s'] are in both add and remove volume list.", id))
			return
		}
	}
	addNew, msg := e.validateAddLocked(g, add)
	if msg == "" {
		_, msg = e.validateRemoveLocked(g, rem)
	}
	if msg != "" {
		writeError(q.w, http.StatusBadRequest, msg)
		return
	}
	if !hasName && !hasDesc && len(addNew) == 0 && len(rem) == 0 {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid Group: Cannot update group %s because no valid name, description, add_volumes, or remove_volumes were provided.", g.ID))
		return
	}
	membership := len(addNew) > 0 || len(rem) > 0
	if membership && g.Status != "available" {
		writeError(q.w, http.StatusBadRequest, "Invalid Group: Group status must be available.")
		return
	}
	if hasName {
		g.Name = name
	}
	if hasDesc {
		g.Description = desc
	}
	g.UpdatedAt = time.Now().UTC()
	e.markDirty()
	if !membership {
		g.Status = "available"
		q.w.WriteHeader(http.StatusAccepted)
		return
	}
	g.Status = "updating"
	id := g.ID
	e.later("group_update", 1, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		g := e.st.Groups[id]
		if g == nil || g.Status != "updating" {
			return
		}
		for _, vid := range addNew {
			if v := e.st.Volumes[vid]; v != nil {
				v.GroupID = id
			}
		}
		for _, vid := range rem {
			if v := e.st.Volumes[vid]; v != nil && v.GroupID == id {
				v.GroupID = ""
			}
		}
		g.Status = "available"
		g.UpdatedAt = time.Now().UTC()
		e.markDirty()
	})
	q.w.WriteHeader(http.StatusAccepted)
}

// validateAddLocked drops volumes already in g and refuses the rest with
// Zed's messages; it returns the volumes to add.
func (e *Emulator) validateAddLocked(g *volumeGroup, add []string) ([]string, string) {
	var out []string
	for _, id := range add {
		v := e.st.Volumes[id]
		switch {
		case v != nil && v.GroupID == g.ID:
			continue
		case v == nil || v.ProjectID != g.ProjectID:
			// Another project's volume is as absent as a missing one.
			return nil, fmt.Sprintf("Invalid volume: Cannot add volume %s to group %s because volume cannot be found.", id, g.ID)
		case v.GroupID != "":
			return nil, fmt.Sprintf("Invalid volume: Cannot add volume %s to group %s because it is already in group %s.", id, g.ID, v.GroupID)
		case !slices.Contains(g.VolumeTypeIDs, v.VolumeTypeID):
			return nil, fmt.Sprintf("Invalid volume: Cannot add volume %s to group %s because volume type %s is not supported by the group.", id, g.ID, v.VolumeTypeID)
		case !validAddStatus[v.Status]:
			return nil, fmt.Sprintf("Invalid volume: Cannot add volume %s to group %s because volume is in an invalid state: %s. Valid states are: ('available', 'in-use').", id, g.ID, v.Status)
		}
		out = append(out, id)
	}
	return out, ""
}

func (e *Emulator) validateRemoveLocked(g *volumeGroup, rem []string) ([]string, string) {
	for _, id := range rem {
		v := e.st.Volumes[id]
		if v == nil || v.GroupID != g.ID {
			return nil, fmt.Sprintf("Invalid volume: Cannot remove volume %s from group %s because it is not in the group.", id, g.ID)
		}
		if !validRemoveStatus[v.Status] {
			return nil, fmt.Sprintf("Invalid volume: Cannot remove volume %s from group %s because volume is in an invalid state: %s. Valid states are: ('available', 'in-use', 'error', 'error_deleting').", id, g.ID, v.Status)
		}
	}
	return rem, ""
}

// groupAction is POST /groups/<id>/action; the emulator knows "delete".
func (e *Emulator) groupAction(q *req) {
	var body map[string]map[string]any
	if !decodeBody(q, &body) {
		return
	}
	del, ok := body["delete"]
	if !ok {
		writeError(q.w, http.StatusBadRequest, "There is no such action")
		return
	}
	withVolumes, okBool := parseBool(del["delete-volumes"])
	if !okBool {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid value '%v' for delete-volumes flag.", del["delete-volumes"]))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.visibleGroupLocked(q, q.p("group_id"))
	if g == nil {
		return
	}
	for _, gs := range e.st.GroupSnapshots {
		if gs.GroupID == g.ID {
			writeError(q.w, http.StatusBadRequest, "Invalid Group: Group has existing snapshots.")
			return
		}
	}
	vols := e.volumesOfGroupLocked(g.ID)
	if len(vols) > 0 && !withVolumes {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid Group: Group %s still contains volumes. The delete-volumes flag is required to delete it.", g.ID))
		return
	}
	if withVolumes {
		for _, v := range vols {
			if len(e.st.attachmentsOfVolume(v.ID)) > 0 {
				writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid Group: Volume in group %s is attached. Need to detach first.", g.ID))
				return
			}
			if len(e.st.snapshotsOfVolume(v.ID)) > 0 {
				writeError(q.w, http.StatusBadRequest, "Invalid Group: Volume in group still has dependent snapshots.")
				return
			}
		}
	} else if g.Status != "available" && g.Status != "error" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid Group: Cannot delete group %s. Group must not have attached volumes, volumes with snapshots, or dependent group snapshots, and it cannot be the source for an ongoing group or group snapshot creation.", g.ID))
		return
	}
	g.Status = "deleting"
	g.UpdatedAt = time.Now().UTC()
	for _, v := range vols {
		v.Status = "deleting"
	}
	e.markDirty()
	id := g.ID
	e.later("group_delete", 1, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		g := e.st.Groups[id]
		if g == nil || g.Status != "deleting" {
			return
		}
		for _, v := range e.volumesOfGroupLocked(id) {
			removeFile(v.DataFile)
			delete(e.st.Volumes, v.ID)
		}
		delete(e.st.Groups, id)
		e.markDirty()
	})
	q.w.WriteHeader(http.StatusAccepted)
}
