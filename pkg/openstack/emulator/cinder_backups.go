package emulator

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

func (e *Emulator) cinderBackupRoutes(add addFunc) {
	add("POST", svcVolume, "/volume/v3/{project_id}/backups", false, (*Emulator).createBackup)
	add("GET", svcVolume, "/volume/v3/{project_id}/backups", false, (*Emulator).listBackups)
	add("GET", svcVolume, "/volume/v3/{project_id}/backups/detail", false, (*Emulator).listBackupsDetail)
	add("GET", svcVolume, "/volume/v3/{project_id}/backups/{backup_id}", false, (*Emulator).getBackup)
	add("DELETE", svcVolume, "/volume/v3/{project_id}/backups/{backup_id}", false, (*Emulator).deleteBackup)
	add("POST", svcVolume, "/volume/v3/{project_id}/backups/{backup_id}/restore", false, (*Emulator).restoreBackup)
}

func (e *Emulator) backupBodyLocked(b *backup, q *req) map[string]any {
	var snap, fail, ts any
	if b.SnapshotID != "" {
		snap = b.SnapshotID
	}
	if b.FailReason != "" {
		fail = b.FailReason
	}
	if !b.DataTimestamp.IsZero() {
		ts = ctime(b.DataTimestamp)
	}
	out := map[string]any{
		"id": b.ID, "name": b.Name, "description": b.Description, "status": b.Status, "volume_id": b.VolumeID,
		"snapshot_id": snap, "size": b.Size, "object_count": 0, "container": b.Container, "availability_zone": b.AZ,
		"created_at": ctime(b.CreatedAt), "updated_at": ctime(b.UpdatedAt), "data_timestamp": ts, "fail_reason": fail,
		"is_incremental": b.Incremental, "has_dependent_backups": false, "links": e.cinderLinks(q, "backups", b.ID),
	}
	if q.mv.AtLeast("3.18") {
		out["os-backup-project-attr:project_id"] = b.ProjectID
	}
	if q.mv.AtLeast("3.43") {
		out["metadata"] = copyMap(b.Metadata)
	}
	if q.mv.AtLeast("3.56") {
		out["user_id"] = b.UserID
	}
	return out
}

func (e *Emulator) visibleBackupLocked(q *req, id string) *backup {
	return visibleLocked(q, e.st.Backups, "Backup", id)
}

func (e *Emulator) createBackup(q *req) {
	var body struct {
		Backup *struct {
			VolumeID    string            `json:"volume_id"`
			SnapshotID  string            `json:"snapshot_id"`
			Name        string            `json:"name"`
			Description string            `json:"description"`
			Container   string            `json:"container"`
			Incremental any               `json:"incremental"`
			Force       any               `json:"force"`
			Metadata    map[string]string `json:"metadata"`
			AZ          string            `json:"availability_zone"`
		} `json:"backup"`
	}
	if !decodeBody(q, &body) {
		return
	}
	in := body.Backup
	if in == nil || in.VolumeID == "" {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute backup. 'volume_id' is a required property")
		return
	}
	force, ok1 := parseBool(in.Force)
	incr, ok2 := parseBool(in.Incremental)
	if !ok1 || !ok2 {
		writeError(q.w, http.StatusBadRequest, "Invalid value for force or incremental.")
		return
	}
	if in.Metadata != nil && !q.mv.AtLeast("3.43") {
		writeError(q.w, http.StatusBadRequest, "Additional properties are not allowed ('metadata' was unexpected)")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.visibleVolumeLocked(q, in.VolumeID)
	if v == nil {
		return
	}
	src, ok := e.backupSourceLocked(q, v, in.SnapshotID, force)
	if !ok {
		return
	}
	if incr && !e.hasFullBackupLocked(v.ID) {
		writeError(q.w, http.StatusBadRequest, "Invalid backup: No backups available to do an incremental backup.")
		return
	}
	if !e.checkQuotaLocked(q, v.ProjectID, "backups", v.Size) {
		return
	}
	container := in.Container
	if container == "" {
		container = "volumebackups"
	}
	now := time.Now().UTC()
	b := &backup{ID: newUUID(), Name: in.Name, Description: in.Description, Status: "creating", VolumeID: v.ID,
		SnapshotID: in.SnapshotID, Size: v.Size, ProjectID: v.ProjectID, UserID: q.tok.UserID, AZ: v.AZ,
		Container: container, Incremental: incr, Metadata: copyMap(in.Metadata), CreatedAt: now, UpdatedAt: now, DataTimestamp: now}
	e.st.Backups[b.ID] = b
	if in.SnapshotID == "" {
		v.PreviousStatus = v.Status
		v.Status = "backing-up"
	}
	e.markDirty()
	id, volID := b.ID, v.ID
	e.later("backup_create", 1, func() { e.finishBackup(id, volID, src) })
	writeJSON(q.w, http.StatusAccepted, map[string]any{"backup": map[string]any{"id": b.ID, "name": b.Name, "links": e.cinderLinks(q, "backups", b.ID)}})
}

// backupSourceLocked is the file a backup of v copies: the snapshot's,
// which must be an available snapshot of v, or the volume's, which must be
// available (or in-use with force). false means it has answered.
func (e *Emulator) backupSourceLocked(q *req, v *volume, snapshotID string, force bool) (string, bool) {
	if snapshotID == "" {
		if backupable := v.Status == "available" || force && v.Status == "in-use"; !backupable {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"%s\".", v.Status))
			return "", false
		}
		return v.DataFile, true
	}
	s := e.visibleSnapshotLocked(q, snapshotID)
	if s == nil {
		return "", false
	}
	if s.VolumeID != v.ID || s.Status != "available" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"%s\".", s.Status))
		return "", false
	}
	return s.DataFile, true
}

// hasFullBackupLocked reports whether the volume has an available backup
// an incremental one can build on.
func (e *Emulator) hasFullBackupLocked(volID string) bool {
	for _, b := range e.st.Backups {
		if b.VolumeID == volID && b.Status == "available" {
			return true
		}
	}
	return false
}

func (e *Emulator) finishBackup(id, volID, src string) {
	dst := e.dataPath("backup", id)
	var err error
	if src != "" {
		err = copySparse(src, dst)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v := e.st.Volumes[volID]; v != nil && v.Status == "backing-up" {
		v.Status = v.PreviousStatus
		v.PreviousStatus = ""
		e.recomputeVolumeStatusLocked(v)
	}
	b := e.st.Backups[id]
	if b == nil || b.Status != "creating" {
		removeFile(dst)
		return
	}
	b.UpdatedAt = time.Now().UTC()
	e.markDirty()
	if err != nil {
		klog.ErrorS(err, "emulator: copying backup data", "backupID", id)
		b.Status = "error"
		b.FailReason = err.Error()
		e.addMessageLocked(b.ProjectID, "BACKUP", b.ID, "", "009", "create backup", "001", "An unknown error occurred.")
		return
	}
	if src != "" {
		b.DataFile = dst
	}
	b.Status = "available"
}

func (e *Emulator) getBackup(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.visibleBackupLocked(q, q.p("backup_id")); b != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"backup": e.backupBodyLocked(b, q)})
	}
}

var backupFilters = map[string]bool{"name": true, "status": true, "volume_id": true}

func (e *Emulator) listBackups(q *req)       { e.listBackupsCommon(q, false) }
func (e *Emulator) listBackupsDetail(q *req) { e.listBackupsCommon(q, true) }

func (e *Emulator) listBackupsCommon(q *req, detail bool) {
	lq, ok := parseListQuery(q, backupFilters)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []sortable
	for _, b := range e.st.Backups {
		if b.ProjectID != q.tok.ProjectID || !lq.matchText("name", b.Name) || !lq.matchText("status", b.Status) || !lq.matchText("volume_id", b.VolumeID) {
			continue
		}
		var item any
		if detail {
			item = e.backupBodyLocked(b, q)
		} else {
			item = map[string]any{"id": b.ID, "name": b.Name, "links": e.cinderLinks(q, "backups", b.ID)}
		}
		items = append(items, sortable{id: b.ID, createdAt: b.CreatedAt, updatedAt: b.UpdatedAt, size: b.Size,
			fields: map[string]string{"name": b.Name, "status": b.Status}, item: item})
	}
	lq.writePage(q, items, "backups", detail, nil)
}

func (e *Emulator) deleteBackup(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.visibleBackupLocked(q, q.p("backup_id"))
	if b == nil {
		return
	}
	if b.Status != "available" && b.Status != "error" {
		writeError(q.w, http.StatusBadRequest, "Invalid backup: Backup status must be available or error")
		return
	}
	b.Status = "deleting"
	b.UpdatedAt = time.Now().UTC()
	e.markDirty()
	dropLater(e, "backup_delete", e.st.Backups, b.ID)
	q.w.WriteHeader(http.StatusAccepted)
}

// restoreBackup implements POST /backups/{id}/restore onto an existing
// available volume, or a new one when no volume_id is given.
func (e *Emulator) restoreBackup(q *req) {
	var body struct {
		Restore *struct {
			VolumeID string `json:"volume_id"`
			Name     string `json:"name"`
		} `json:"restore"`
	}
	if !decodeBody(q, &body) {
		return
	}
	if body.Restore == nil {
		writeError(q.w, http.StatusBadRequest, "Missing required element 'restore' in request body.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.visibleBackupLocked(q, q.p("backup_id"))
	if b == nil {
		return
	}
	if b.Status != "available" {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid backup: Backup status must be available but the current status is \"%s\".", b.Status))
		return
	}
	var v *volume
	now := time.Now().UTC()
	if body.Restore.VolumeID != "" {
		if v = e.visibleVolumeLocked(q, body.Restore.VolumeID); v == nil {
			return
		}
		if v.Status != "available" || v.Size < b.Size {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: Volume to be restored to must be available and at least %dG, but the current status is \"%s\".", b.Size, v.Status))
			return
		}
		v.Status = "restoring-backup"
	} else {
		if !e.checkQuotaLocked(q, b.ProjectID, "volumes", b.Size) {
			return
		}
		name := body.Restore.Name
		if name == "" {
			name = "restore_backup_" + b.ID
		}
		vt := e.st.volumeTypeByNameOrID("__DEFAULT__")
		v = &volume{ID: newUUID(), Name: name, Status: "restoring-backup", Size: b.Size, AZ: b.AZ, VolumeTypeID: vt.ID,
			ProjectID: b.ProjectID, UserID: q.tok.UserID, Metadata: map[string]string{}, Host: "emulator@lvm#" + b.AZ, CreatedAt: now}
		e.st.Volumes[v.ID] = v
	}
	v.UpdatedAt = now
	b.Status = "restoring"
	e.markDirty()
	volID, backupID, src, size := v.ID, b.ID, b.DataFile, v.Size
	e.later("backup_restore", 1, func() {
		dst := e.dataPath("volume", volID)
		err := prepareDataFile(src, dst, int64(size)<<30)
		e.mu.Lock()
		defer e.mu.Unlock()
		if b := e.st.Backups[backupID]; b != nil && b.Status == "restoring" {
			b.Status = "available"
		}
		v := e.st.Volumes[volID]
		if v == nil || v.Status != "restoring-backup" {
			return
		}
		v.UpdatedAt = time.Now().UTC()
		e.markDirty()
		if err != nil {
			klog.ErrorS(err, "emulator: restoring backup", "backupID", backupID)
			v.Status = "error_restoring"
			return
		}
		v.DataFile = dst
		v.Status = "available"
	})
	writeJSON(q.w, http.StatusAccepted, map[string]any{"restore": map[string]any{"backup_id": b.ID, "volume_id": v.ID, "volume_name": v.Name}})
}
