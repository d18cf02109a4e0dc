package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// os-retype, as Cinder's API checks it and as its scheduler and volume
// manager carry it out. The emulator has one backend per AZ: a type whose
// volume_backend_name differs from the volume's type's needs a migration,
// which migration_policy "never" forbids; the scheduler then finds no
// backend and the volume returns to its previous status, type unchanged,
// with no error to the caller (the API answered 202 long before).

const retypeRefused = "Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change."

func (e *Emulator) retypeVolume(q *req, raw rawJSON) {
	var in struct {
		NewType         string `json:"new_type"`
		MigrationPolicy string `json:"migration_policy"`
	}
	if err := raw.into(&in); err != nil || in.NewType == "" {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute new_type.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, q.p("volume_id"))
	if v == nil {
		return
	}
	if in.MigrationPolicy != "" && in.MigrationPolicy != "never" && in.MigrationPolicy != "on-demand" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute migration_policy. Value: %s. '%s' is not one of ['on-demand', 'never']", in.MigrationPolicy, in.MigrationPolicy))
		return
	}
	vt := e.st.volumeTypeByNameOrID(in.NewType)
	if vt == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume type with name %s could not be found.", in.NewType))
		return
	}
	// Zed checks status, migration, group, type and QoS in one conditional
	// update, with one message for all (checked on the rig).
	if (v.Status != "available" && v.Status != "in-use") || vt.ID == v.VolumeTypeID {
		writeError(q.w, http.StatusBadRequest, retypeRefused)
		return
	}
	newMulti := strings.EqualFold(strings.TrimSpace(vt.ExtraSpecs["multiattach"]), "<is> True")
	if v.Status == "in-use" && (v.Multiattach || newMulti) {
		writeError(q.w, http.StatusBadRequest, "Invalid input received: Retype of an in-use volume to or from multiattach is not supported.")
		return
	}
	old := e.st.VolumeTypes[v.VolumeTypeID]
	needsMigration := old != nil && old.ExtraSpecs["volume_backend_name"] != vt.ExtraSpecs["volume_backend_name"]
	v.PreviousStatus = v.Status
	v.Status = "retyping"
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
	id, typeID := v.ID, vt.ID
	done := needsMigration && in.MigrationPolicy != "on-demand"
	factor := 1.0
	if needsMigration && !done {
		factor = 3 // a migration copies the data
	}
	e.later("volume_retype", factor, func() { e.finishRetype(id, typeID, !done, newMulti) })
	q.w.WriteHeader(http.StatusAccepted)
}

func (e *Emulator) finishRetype(id, typeID string, apply, multiattach bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.st.Volumes[id]
	if v == nil || v.Status != "retyping" {
		return
	}
	if apply {
		v.VolumeTypeID = typeID
		v.Multiattach = multiattach
	}
	v.Status = v.PreviousStatus
	if v.Status == "" {
		v.Status = "available"
	}
	v.PreviousStatus = ""
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
}
