package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

func (e *Emulator) cinderRoutes(add addFunc) {
	add("GET", svcVolume, "/volume", true, (*Emulator).cinderVersions)
	add("GET", svcVolume, "/volume/v3", true, (*Emulator).cinderV3Version)
	add("POST", svcVolume, "/volume/v3/{project_id}/volumes", false, (*Emulator).createVolume)
	add("GET", svcVolume, "/volume/v3/{project_id}/volumes", false, (*Emulator).listVolumes)
	add("GET", svcVolume, "/volume/v3/{project_id}/volumes/detail", false, (*Emulator).listVolumesDetail)
	add("GET", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}", false, (*Emulator).getVolume)
	add("PUT", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}", false, (*Emulator).updateVolume)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}", false, (*Emulator).deleteVolume)
	add("POST", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}/action", false, (*Emulator).volumeAction)
	add("GET", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}/metadata", false, (*Emulator).getVolumeMetadata)
	add("POST", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}/metadata", false, (*Emulator).setVolumeMetadata)
	add("PUT", svcVolume, "/volume/v3/{project_id}/volumes/{volume_id}/metadata", false, (*Emulator).setVolumeMetadata)
	e.cinderSnapshotRoutes(add)
	e.cinderBackupRoutes(add)
	e.cinderMiscRoutes(add)
	e.cinderGroupRoutes(add)
}

func (e *Emulator) volumeBodyLocked(v *volume, q *req) map[string]any {
	atts := []any{}
	for _, a := range e.st.attachmentsOfVolume(v.ID) {
		// Cinder lists the attachments whose attach_status is attached:
		// not reserved or attaching ones, but still a detaching one, since
		// begin_detaching changes only the volume's status (checked on
		// the rig by the differential test's attachment counts).
		if a.Status != "attached" && a.Status != "detaching" {
			continue
		}
		host := ""
		if s := e.st.Servers[a.ServerID]; s != nil {
			host = s.Name
		}
		atts = append(atts, map[string]any{"id": v.ID, "attachment_id": a.ID, "volume_id": v.ID, "server_id": a.ServerID,
			"host_name": host, "device": a.Device, "attached_at": ctime(a.AttachedAt)})
	}
	vt := e.st.VolumeTypes[v.VolumeTypeID]
	vtName := ""
	if vt != nil {
		vtName = vt.Name
	}
	md := map[string]string{}
	for k, val := range v.Metadata {
		md[k] = val
	}
	var snap, src any
	if v.SnapshotID != "" {
		snap = v.SnapshotID
	}
	if v.SourceVolID != "" {
		src = v.SourceVolID
	}
	b := map[string]any{
		"id": v.ID, "name": v.Name, "description": v.Description, "status": v.Status, "size": v.Size,
		"availability_zone": v.AZ, "created_at": ctime(v.CreatedAt), "updated_at": ctime(v.UpdatedAt),
		"attachments": atts, "volume_type": vtName, "snapshot_id": snap, "source_volid": src,
		"metadata": md, "user_id": v.UserID, "bootable": "false", "encrypted": false,
		"replication_status": nil, "consistencygroup_id": nil, "multiattach": v.Multiattach,
		"migration_status": nil, "links": e.cinderLinks(q, "volumes", v.ID),
		"os-vol-tenant-attr:tenant_id": v.ProjectID, "os-vol-host-attr:host": v.Host,
		"os-vol-mig-status-attr:migstat": nil, "os-vol-mig-status-attr:name_id": nil,
	}
	if q.mv.AtLeast("3.13") {
		b["group_id"] = nilIfEmpty(v.GroupID)
	}
	if q.mv.AtLeast("3.21") {
		b["provider_id"] = nil
	}
	if q.mv.AtLeast("3.47") {
		if v.BackupID != "" {
			b["backup_id"] = v.BackupID
		} else {
			b["backup_id"] = nil
		}
	}
	if q.mv.AtLeast("3.48") {
		b["shared_targets"] = false
		b["service_uuid"] = "a3b0c1d2-e3f4-4a5b-8c6d-7e8f9a0b1c2d"
	}
	if q.mv.AtLeast("3.61") {
		b["cluster_name"] = nil
	}
	if q.mv.AtLeast("3.63") {
		b["volume_type_id"] = v.VolumeTypeID
	}
	if q.mv.AtLeast("3.65") {
		b["consumes_quota"] = true
	}
	return b
}

// visibleVolumeLocked returns the caller's volume or answers 404.
func (e *Emulator) visibleVolumeLocked(q *req, id string) *volume {
	return visibleLocked(q, e.st.Volumes, "Volume", id)
}

func (e *Emulator) dataPath(kind, id string) string {
	return fmt.Sprintf("%s/%s-%s.img", e.opts.DataDir, kind, id)
}

type createVolumeBody struct {
	Volume *struct {
		Size             *int              `json:"size"`
		Name             string            `json:"name"`
		Description      string            `json:"description"`
		VolumeType       string            `json:"volume_type"`
		AvailabilityZone string            `json:"availability_zone"`
		Metadata         map[string]string `json:"metadata"`
		SnapshotID       string            `json:"snapshot_id"`
		SourceVolID      string            `json:"source_volid"`
		BackupID         string            `json:"backup_id"`
		ImageRef         string            `json:"imageRef"`
		Multiattach      bool              `json:"multiattach"`
		ConsistencyGroup string            `json:"consistencygroup_id"`
	} `json:"volume"`
	Hints map[string]any `json:"OS-SCH-HNT:scheduler_hints"`
}

func (e *Emulator) createVolume(q *req) {
	var body createVolumeBody
	if !decodeBody(q, &body) {
		return
	}
	if body.Volume == nil {
		writeError(q.w, http.StatusBadRequest, "Missing required element 'volume' in request body.")
		return
	}
	in := body.Volume
	if in.BackupID != "" && !q.mv.AtLeast("3.47") {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute volume. Value: backup_id. Additional properties are not allowed ('backup_id' was unexpected)")
		return
	}
	if in.ImageRef != "" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid image identifier or unable to access requested image. (image %s: the emulator has no Glance)", in.ImageRef))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	pid := q.tok.ProjectID

	size := 0
	if in.Size != nil {
		size = *in.Size
	}
	az := in.AvailabilityZone
	var srcFile, restoreFrom string
	var srcSize int
	var srcTypeID string
	switch {
	case in.SnapshotID != "":
		sn := e.visibleSnapshotLocked(q, in.SnapshotID)
		if sn == nil {
			return
		}
		if sn.Status != "available" {
			writeError(q.w, http.StatusBadRequest, "Invalid snapshot: Originating snapshot status must be one of 'available' values")
			return
		}
		srcFile, srcSize = sn.DataFile, sn.Size
		if pv := e.st.Volumes[sn.VolumeID]; pv != nil {
			srcTypeID = pv.VolumeTypeID
			if az == "" {
				az = pv.AZ
			}
		}
	case in.SourceVolID != "":
		sv := e.visibleVolumeLocked(q, in.SourceVolID)
		if sv == nil {
			return
		}
		if sv.Status != "available" && sv.Status != "in-use" {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: Source volume status must be one of 'available', 'in-use' values, but current status is: %s.", sv.Status))
			return
		}
		srcFile, srcSize, srcTypeID = sv.DataFile, sv.Size, sv.VolumeTypeID
		if az == "" {
			az = sv.AZ
		}
	case in.BackupID != "":
		bk := e.visibleBackupLocked(q, in.BackupID)
		if bk == nil {
			return
		}
		if bk.Status != "available" {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid backup: Backup status must be available but the current status is \"%s\".", bk.Status))
			return
		}
		srcFile, srcSize, restoreFrom = bk.DataFile, bk.Size, bk.ID
	}
	if size == 0 && srcSize > 0 {
		size = srcSize
	}
	if size <= 0 {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute size. Value: %d. %d is less than the minimum of 1", size, size))
		return
	}
	if size < srcSize {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid input received: Volume size '%d'GB cannot be smaller than the source size %dGB. They must be >= original size.", size, srcSize))
		return
	}
	if az == "" {
		az = e.opts.AvailabilityZones[0]
	}
	if !slices.Contains(e.opts.AvailabilityZones, az) {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid input received: Availability zone '%s' is invalid.", az))
		return
	}
	var vt *volumeType
	switch {
	case in.VolumeType != "":
		if vt = e.st.volumeTypeByNameOrID(in.VolumeType); vt == nil {
			writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume type with name %s could not be found.", in.VolumeType))
			return
		}
	case srcTypeID != "" && e.st.VolumeTypes[srcTypeID] != nil:
		vt = e.st.VolumeTypes[srcTypeID]
	default:
		vt = e.st.volumeTypeByNameOrID("__DEFAULT__")
	}
	multi := strings.EqualFold(strings.TrimSpace(vt.ExtraSpecs["multiattach"]), "<is> True")
	if in.Multiattach && !multi {
		writeError(q.w, http.StatusBadRequest, "Invalid input received: multiattach must be requested through a volume type with the multiattach extra spec.")
		return
	}
	if !e.checkQuotaLocked(q, pid, "volumes", size) {
		return
	}
	schedErr := e.schedulerHintErrorLocked(body.Hints, az)

	now := time.Now().UTC()
	v := &volume{
		ID: newUUID(), Name: in.Name, Description: in.Description, Status: "creating", Size: size, AZ: az,
		VolumeTypeID: vt.ID, ProjectID: pid, UserID: q.tok.UserID, Metadata: copyMap(in.Metadata),
		SnapshotID: in.SnapshotID, SourceVolID: in.SourceVolID, BackupID: in.BackupID, Multiattach: multi,
		Host: "emulator@lvm#" + az, CreatedAt: now, UpdatedAt: now,
	}
	e.st.Volumes[v.ID] = v
	if restoreFrom != "" {
		e.st.Backups[restoreFrom].Status = "restoring"
	}
	fail := schedErr || e.chance(e.CurrentFaults().VolumeErrorRate)
	e.markDirty()
	op := "volume_create"
	if restoreFrom != "" {
		op = "backup_restore"
	}
	id, reqID := v.ID, q.requestID
	e.later(op, 1, func() { e.finishVolumeCreate(id, srcFile, restoreFrom, fail, reqID) })
	writeJSON(q.w, http.StatusAccepted, map[string]any{"volume": e.volumeBodyLocked(v, q)})
}

// schedulerHintErrorLocked reports whether same_host/different_host hints
// leave no backend: one backend per AZ, so same_host needs the referenced
// volumes in this AZ and different_host needs them elsewhere.
func (e *Emulator) schedulerHintErrorLocked(hints map[string]any, az string) bool {
	ids := func(v any) []string {
		switch t := v.(type) {
		case string:
			return []string{t}
		case []any:
			var out []string
			for _, x := range t {
				out = append(out, fmt.Sprint(x))
			}
			return out
		}
		return nil
	}
	for _, id := range ids(hints["same_host"]) {
		if v := e.st.Volumes[id]; v == nil || v.AZ != az {
			return true
		}
	}
	for _, id := range ids(hints["different_host"]) {
		if v := e.st.Volumes[id]; v == nil || v.AZ == az {
			return true
		}
	}
	return false
}

func (e *Emulator) finishVolumeCreate(id, srcFile, restoreFrom string, fail bool, reqID string) {
	e.mu.Lock()
	v := e.st.Volumes[id]
	if v == nil || v.Status != "creating" {
		e.mu.Unlock()
		return
	}
	size, dst := v.Size, e.dataPath("volume", id)
	e.mu.Unlock()

	var err error
	if !fail {
		err = prepareDataFile(srcFile, dst, int64(size)<<30)
		if err != nil {
			klog.ErrorS(err, "emulator: preparing volume data file", "volumeID", id)
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if restoreFrom != "" {
		if b := e.st.Backups[restoreFrom]; b != nil && b.Status == "restoring" {
			b.Status = "available"
			b.UpdatedAt = time.Now().UTC()
		}
	}
	v = e.st.Volumes[id]
	if v == nil || v.Status != "creating" {
		return
	}
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
	if fail || err != nil {
		v.Status = "error"
		e.addMessageLocked(v.ProjectID, "VOLUME", v.ID, reqID, "001", "schedule allocate volume", "006", "Could not find any available weighted backend.")
		return
	}
	v.DataFile = dst
	v.Status = "available"
}

func (e *Emulator) getVolume(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.visibleVolumeLocked(q, q.p("volume_id")); v != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"volume": e.volumeBodyLocked(v, q)})
	}
}

var volumeFilters = map[string]bool{"name": true, "status": true, "metadata": true, "bootable": true, "availability_zone": true, "group_id": true, "migration_status": true, "size": true}

func (e *Emulator) listVolumes(q *req)       { e.listVolumesCommon(q, false) }
func (e *Emulator) listVolumesDetail(q *req) { e.listVolumesCommon(q, true) }

func (e *Emulator) listVolumesCommon(q *req, detail bool) {
	lq, ok := parseListQuery(q, volumeFilters)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []sortable
	for _, v := range e.st.Volumes {
		if v.ProjectID != q.tok.ProjectID || !lq.matchText("name", v.Name) || !lq.matchText("status", v.Status) ||
			!lq.matchText("availability_zone", v.AZ) || !lq.matchText("size", fmt.Sprint(v.Size)) {
			continue
		}
		okMD, err := lq.matchMetadata(v.Metadata)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, "Invalid metadata filter: "+err.Error())
			return
		}
		if !okMD {
			continue
		}
		var item any
		if detail {
			item = e.volumeBodyLocked(v, q)
		} else {
			item = map[string]any{"id": v.ID, "name": v.Name, "links": e.cinderLinks(q, "volumes", v.ID)}
		}
		items = append(items, sortable{id: v.ID, createdAt: v.CreatedAt, updatedAt: v.UpdatedAt, size: v.Size,
			fields: map[string]string{"name": v.Name, "status": v.Status, "availability_zone": v.AZ}, item: item})
	}
	var extra map[string]any
	if q.mv.AtLeast("3.45") && q.r.URL.Query().Get("with_count") != "" {
		extra = map[string]any{"count": len(items)}
	}
	lq.writePage(q, items, "volumes", detail, extra)
}

func (e *Emulator) updateVolume(q *req) {
	var body struct {
		Volume *struct {
			Name        *string           `json:"name"`
			Description *string           `json:"description"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"volume"`
	}
	if !decodeBody(q, &body) {
		return
	}
	if body.Volume == nil {
		writeError(q.w, http.StatusBadRequest, "Missing required element 'volume' in request body.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, q.p("volume_id"))
	if v == nil {
		return
	}
	if body.Volume.Name != nil {
		v.Name = *body.Volume.Name
	}
	if body.Volume.Description != nil {
		v.Description = *body.Volume.Description
	}
	if body.Volume.Metadata != nil {
		v.Metadata = copyMap(body.Volume.Metadata)
	}
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"volume": e.volumeBodyLocked(v, q)})
}

func (e *Emulator) getVolumeMetadata(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.visibleVolumeLocked(q, q.p("volume_id")); v != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"metadata": copyMap(v.Metadata)})
	}
}

// setVolumeMetadata: POST merges, PUT replaces, as in Cinder.
func (e *Emulator) setVolumeMetadata(q *req) {
	var body struct {
		Metadata map[string]string `json:"metadata"`
	}
	if !decodeBody(q, &body) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, q.p("volume_id"))
	if v == nil {
		return
	}
	if q.r.Method == http.MethodPut || v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	for k, val := range body.Metadata {
		v.Metadata[k] = val
	}
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
	writeJSON(q.w, http.StatusOK, map[string]any{"metadata": copyMap(v.Metadata)})
}

var deletableVolumeStatus = map[string]bool{"available": true, "error": true, "error_restoring": true, "error_extending": true, "error_managing": true}

func (e *Emulator) deleteVolume(q *req) {
	cascade := strings.EqualFold(q.r.URL.Query().Get("cascade"), "true")
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, q.p("volume_id"))
	if v == nil {
		return
	}
	snaps := e.st.snapshotsOfVolume(v.ID)
	if !deletableVolumeStatus[v.Status] || len(e.st.attachmentsOfVolume(v.ID)) > 0 || (len(snaps) > 0 && !cascade) || v.GroupID != "" {
		writeError(q.w, http.StatusBadRequest, "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.")
		return
	}
	if cascade {
		for _, s := range snaps {
			if s.Status != "available" && s.Status != "error" {
				writeError(q.w, http.StatusBadRequest, "Invalid volume: Snapshot of volume must be available or error to cascade delete.")
				return
			}
		}
		for _, s := range snaps {
			s.Status = "deleting"
		}
	}
	v.Status = "deleting"
	v.UpdatedAt = time.Now().UTC()
	e.markDirty()
	id := v.ID
	e.later("volume_delete", 1, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		v := e.st.Volumes[id]
		if v == nil || v.Status != "deleting" {
			return
		}
		for _, s := range e.st.snapshotsOfVolume(id) {
			removeFile(s.DataFile)
			delete(e.st.Snapshots, s.ID)
		}
		removeFile(v.DataFile)
		delete(e.st.Volumes, id)
		e.markDirty()
	})
	q.w.WriteHeader(http.StatusAccepted)
}

func copyMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
