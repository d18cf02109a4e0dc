package emulator

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

func (e *Emulator) cinderMiscRoutes(add addFunc) {
	add("GET", svcVolume, "/volume/v3/{project_id}/types", false, (*Emulator).listTypes)
	add("POST", svcVolume, "/volume/v3/{project_id}/types", false, (*Emulator).createType)
	add("GET", svcVolume, "/volume/v3/{project_id}/types/default", false, (*Emulator).defaultType)
	add("GET", svcVolume, "/volume/v3/{project_id}/types/{type_id}", false, (*Emulator).getType)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/types/{type_id}", false, (*Emulator).deleteType)
	add("GET", svcVolume, "/volume/v3/{project_id}/types/{type_id}/extra_specs", false, (*Emulator).getExtraSpecs)
	add("POST", svcVolume, "/volume/v3/{project_id}/types/{type_id}/extra_specs", false, (*Emulator).setExtraSpecs)
	add("GET", svcVolume, "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}", false, (*Emulator).getExtraSpec)
	add("GET", svcVolume, "/volume/v3/{project_id}/os-availability-zone", false, (*Emulator).cinderAZ)
	add("GET", svcVolume, "/volume/v3/{project_id}/os-quota-sets/{target_project_id}", false, (*Emulator).getQuotaSet)
	add("PUT", svcVolume, "/volume/v3/{project_id}/os-quota-sets/{target_project_id}", false, (*Emulator).updateQuotaSet)
	add("GET", svcVolume, "/volume/v3/{project_id}/os-quota-sets/{target_project_id}/defaults", false, (*Emulator).getQuotaDefaults)
	add("GET", svcVolume, "/volume/v3/{project_id}/limits", false, (*Emulator).getLimits)
	add("GET", svcVolume, "/volume/v3/{project_id}/messages", false, (*Emulator).listMessages)
	add("GET", svcVolume, "/volume/v3/{project_id}/messages/{message_id}", false, (*Emulator).getMessage)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/messages/{message_id}", false, (*Emulator).deleteMessage)
}

func typeBody(vt *volumeType) map[string]any {
	return map[string]any{"id": vt.ID, "name": vt.Name, "description": vt.Description, "is_public": vt.IsPublic,
		"os-volume-type-access:is_public": vt.IsPublic, "extra_specs": copyMap(vt.ExtraSpecs), "qos_specs_id": nil}
}

func (e *Emulator) listTypes(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var list []*volumeType
	for _, vt := range e.st.VolumeTypes {
		list = append(list, vt)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	out := []any{}
	for _, vt := range list {
		out = append(out, typeBody(vt))
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"volume_types": out})
}

func (e *Emulator) typeLocked(q *req) *volumeType {
	vt := e.st.VolumeTypes[q.p("type_id")]
	if vt == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume type %s could not be found.", q.p("type_id")))
	}
	return vt
}

func (e *Emulator) getType(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if vt := e.typeLocked(q); vt != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"volume_type": typeBody(vt)})
	}
}

func (e *Emulator) defaultType(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	writeJSON(q.w, http.StatusOK, map[string]any{"volume_type": typeBody(e.st.volumeTypeByNameOrID("__DEFAULT__"))})
}

func (e *Emulator) createType(q *req) {
	var body struct {
		VolumeType *struct {
			Name        string            `json:"name"`
			Description string            `json:"description"`
			IsPublic    *bool             `json:"os-volume-type-access:is_public"`
			ExtraSpecs  map[string]string `json:"extra_specs"`
		} `json:"volume_type"`
	}
	if !decodeBody(q, &body) {
		return
	}
	if body.VolumeType == nil || strings.TrimSpace(body.VolumeType.Name) == "" {
		writeError(q.w, http.StatusBadRequest, "Volume type name can not be empty.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.volumeTypeByNameOrID(body.VolumeType.Name) != nil {
		writeError(q.w, http.StatusConflict, fmt.Sprintf("Volume Type %s already exists.", body.VolumeType.Name))
		return
	}
	vt := &volumeType{ID: newUUID(), Name: body.VolumeType.Name, Description: body.VolumeType.Description,
		ExtraSpecs: copyMap(body.VolumeType.ExtraSpecs), IsPublic: body.VolumeType.IsPublic == nil || *body.VolumeType.IsPublic}
	e.st.VolumeTypes[vt.ID] = vt
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"volume_type": typeBody(vt)})
}

func (e *Emulator) deleteType(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	vt := e.typeLocked(q)
	if vt == nil {
		return
	}
	for _, v := range e.st.Volumes {
		if v.VolumeTypeID == vt.ID {
			writeError(q.w, http.StatusBadRequest, "Target volume type is still in use.")
			return
		}
	}
	delete(e.st.VolumeTypes, vt.ID)
	e.markDirty()
	q.w.WriteHeader(http.StatusAccepted)
}

func (e *Emulator) getExtraSpecs(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if vt := e.typeLocked(q); vt != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"extra_specs": copyMap(vt.ExtraSpecs)})
	}
}

func (e *Emulator) getExtraSpec(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	vt := e.typeLocked(q)
	if vt == nil {
		return
	}
	v, ok := vt.ExtraSpecs[q.p("key")]
	if !ok {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume Type %s has no extra specs with key %s.", vt.ID, q.p("key")))
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{q.p("key"): v})
}

func (e *Emulator) setExtraSpecs(q *req) {
	var body struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	if !decodeBody(q, &body) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	vt := e.typeLocked(q)
	if vt == nil {
		return
	}
	for k, v := range body.ExtraSpecs {
		vt.ExtraSpecs[k] = v
	}
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"extra_specs": copyMap(body.ExtraSpecs)})
}

func (e *Emulator) cinderAZ(q *req) {
	out := []any{}
	for _, az := range e.opts.AvailabilityZones {
		out = append(out, map[string]any{"zoneName": az, "zoneState": map[string]any{"available": true}})
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}

// Quota sets: a project may read its own; reading another answers 403, as
// Cinder's policy does for non-admins.
func (e *Emulator) quotaTargetLocked(q *req) (string, bool) {
	target := q.p("target_project_id")
	if target != q.tok.ProjectID {
		if e.st.Projects[target] == nil {
			writeError(q.w, http.StatusNotFound, fmt.Sprintf("Project %s could not be found.", target))
			return "", false
		}
		writeError(q.w, http.StatusForbidden, "Policy doesn't allow volume_extension:quotas:show to be performed.")
		return "", false
	}
	return target, true
}

func (e *Emulator) getQuotaSet(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pid, ok := e.quotaTargetLocked(q)
	if !ok {
		return
	}
	qt := e.quotaLocked(pid)
	if v := q.r.URL.Query().Get("usage"); v == "true" || v == "True" || v == "1" {
		u := e.usageLocked(pid)
		item := func(limit, inUse int) map[string]any {
			return map[string]any{"limit": limit, "in_use": inUse, "reserved": 0, "allocated": 0}
		}
		writeJSON(q.w, http.StatusOK, map[string]any{"quota_set": map[string]any{
			"id": pid, "volumes": item(qt.Volumes, u.volumes), "gigabytes": item(qt.Gigabytes, u.gigabytes),
			"snapshots": item(qt.Snapshots, u.snapshots), "backups": item(qt.Backups, u.backups),
			"backup_gigabytes": item(qt.BackupGigabytes, u.backupGigabytes), "per_volume_gigabytes": item(qt.PerVolumeGigabytes, 0),
			"groups": item(10, 0),
		}})
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"quota_set": quotaBody(pid, qt)})
}

func quotaBody(pid string, qt quota) map[string]any {
	return map[string]any{"id": pid, "volumes": qt.Volumes, "gigabytes": qt.Gigabytes, "snapshots": qt.Snapshots,
		"backups": qt.Backups, "backup_gigabytes": qt.BackupGigabytes, "per_volume_gigabytes": qt.PerVolumeGigabytes, "groups": 10}
}

func (e *Emulator) getQuotaDefaults(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pid := q.p("target_project_id")
	writeJSON(q.w, http.StatusOK, map[string]any{"quota_set": quotaBody(pid, quota{Volumes: e.opts.QuotaVolumes, Gigabytes: e.opts.QuotaGigabytes,
		Snapshots: e.opts.QuotaSnapshots, Backups: e.opts.QuotaBackups, BackupGigabytes: 1000, PerVolumeGigabytes: -1})})
}

// updateQuotaSet lets a test (or the demo) change a project's quota; the
// emulator treats every user as allowed to, unlike Cinder's admin-only policy.
func (e *Emulator) updateQuotaSet(q *req) {
	var body struct {
		QuotaSet map[string]any `json:"quota_set"`
	}
	if !decodeBody(q, &body) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	pid := q.p("target_project_id")
	if e.st.Projects[pid] == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Project %s could not be found.", pid))
		return
	}
	qt := e.quotaLocked(pid)
	for k, raw := range body.QuotaSet {
		f, ok := raw.(float64)
		if !ok {
			continue
		}
		n := int(f)
		switch k {
		case "volumes":
			qt.Volumes = n
		case "gigabytes":
			qt.Gigabytes = n
		case "snapshots":
			qt.Snapshots = n
		case "backups":
			qt.Backups = n
		case "backup_gigabytes":
			qt.BackupGigabytes = n
		case "per_volume_gigabytes":
			qt.PerVolumeGigabytes = n
		}
	}
	e.st.Quotas[pid] = &qt
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"quota_set": quotaBody(pid, qt)})
}

// SetQuota changes one project's quota (by project name); -1 is unlimited.
func (e *Emulator) SetQuota(projectName string, gigabytes, volumes, snapshots, backups int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.st.projectByName(projectName, "")
	if p == nil {
		return
	}
	qt := e.quotaLocked(p.ID)
	qt.Gigabytes, qt.Volumes, qt.Snapshots, qt.Backups = gigabytes, volumes, snapshots, backups
	e.st.Quotas[p.ID] = &qt
	e.markDirty()
}

func (e *Emulator) getLimits(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pid := q.tok.ProjectID
	qt := e.quotaLocked(pid)
	u := e.usageLocked(pid)
	writeJSON(q.w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]any{
		"maxTotalVolumes": qt.Volumes, "maxTotalSnapshots": qt.Snapshots, "maxTotalVolumeGigabytes": qt.Gigabytes,
		"maxTotalBackups": qt.Backups, "maxTotalBackupGigabytes": qt.BackupGigabytes,
		"totalVolumesUsed": u.volumes, "totalGigabytesUsed": u.gigabytes, "totalSnapshotsUsed": u.snapshots,
		"totalBackupsUsed": u.backups, "totalBackupGigabytesUsed": u.backupGigabytes,
	}}})
}

func messageBody(m *message, q *req, e *Emulator) map[string]any {
	return map[string]any{"id": m.ID, "event_id": m.EventID, "user_message": m.UserMessage, "message_level": m.MessageLevel,
		"resource_type": m.ResourceType, "resource_uuid": m.ResourceUUID, "request_id": m.RequestID,
		"created_at": ctime(m.CreatedAt), "guaranteed_until": ctime(m.GuaranteedUntil), "links": e.cinderLinks(q, "messages", m.ID)}
}

// Messages appeared in 3.3; below that the resource does not exist.
func messagesSupported(q *req) bool {
	if !q.mv.AtLeast("3.3") {
		writeError(q.w, http.StatusNotFound, "The resource could not be found.")
		return false
	}
	return true
}

var messageFilters = map[string]bool{"resource_uuid": true, "resource_type": true, "event_id": true, "request_id": true, "message_level": true}

func (e *Emulator) listMessages(q *req) {
	if !messagesSupported(q) {
		return
	}
	lq, ok := parseListQuery(q, messageFilters)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []sortable
	for _, m := range e.st.Messages {
		if m.ProjectID != q.tok.ProjectID || !lq.matchText("resource_uuid", m.ResourceUUID) || !lq.matchText("resource_type", m.ResourceType) ||
			!lq.matchText("event_id", m.EventID) || !lq.matchText("request_id", m.RequestID) {
			continue
		}
		items = append(items, sortable{id: m.ID, createdAt: m.CreatedAt, item: messageBody(m, q, e)})
	}
	lq.writePage(q, items, "messages", false, nil)
}

func (e *Emulator) messageLocked(q *req) *message {
	return visibleLocked(q, e.st.Messages, "Message", q.p("message_id"))
}

func (e *Emulator) getMessage(q *req) {
	if !messagesSupported(q) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m := e.messageLocked(q); m != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"message": messageBody(m, q, e)})
	}
}

func (e *Emulator) deleteMessage(q *req) {
	if !messagesSupported(q) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m := e.messageLocked(q); m != nil {
		delete(e.st.Messages, m.ID)
		e.markDirty()
		q.w.WriteHeader(http.StatusNoContent)
	}
}
