package emulator

import "sort"

// VolumeView is a read-only copy of a volume for assertions and leak checks.
type VolumeView struct {
	ID, Name, Status string
	SizeGiB          int
	AZ               string
	VolumeType       string
	Metadata         map[string]string
	Attachments      []string // server ids with a completed attachment
	ProjectID        string
	DataFile         string
	Multiattach      bool
	SnapshotID       string
	SourceVolID      string
	BackupID         string
}

// SnapshotView is a read-only copy of a snapshot.
type SnapshotView struct {
	ID, Name, Status, VolumeID string
	SizeGiB                    int
	ProjectID                  string
	Metadata                   map[string]string
	DataFile                   string
}

// BackupView is a read-only copy of a backup.
type BackupView struct {
	ID, Name, Status, VolumeID, SnapshotID string
	SizeGiB                                int
	ProjectID                              string
	DataFile                               string
}

// AttachmentView is a read-only copy of a server-volume attachment.
type AttachmentView struct {
	ID         string // Cinder attachment id
	ServerID   string
	VolumeID   string
	Status     string // reserved, attaching, attached, detaching
	Device     string // /dev/vdX as Nova reports it
	Address    string // PCI address in metadata and by-path
	LoopDevice string // /dev/loopN when hot-plugged
}

// Volumes lists every volume of every project, oldest first.
func (e *Emulator) Volumes() []VolumeView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []VolumeView
	for _, v := range e.st.Volumes {
		vv := VolumeView{ID: v.ID, Name: v.Name, Status: v.Status, SizeGiB: v.Size, AZ: v.AZ, Metadata: copyMap(v.Metadata),
			ProjectID: v.ProjectID, DataFile: v.DataFile, Multiattach: v.Multiattach, SnapshotID: v.SnapshotID,
			SourceVolID: v.SourceVolID, BackupID: v.BackupID}
		if vt := e.st.VolumeTypes[v.VolumeTypeID]; vt != nil {
			vv.VolumeType = vt.Name
		}
		for _, a := range e.st.attachmentsOfVolume(v.ID) {
			if a.Status == "attached" {
				vv.Attachments = append(vv.Attachments, a.ServerID)
			}
		}
		out = append(out, vv)
	}
	e.sortByCreated(out, func(i int) string { return out[i].ID }, func(id string) int64 {
		return e.st.Volumes[id].CreatedAt.UnixNano()
	})
	return out
}

func (e *Emulator) sortByCreated(s any, idAt func(int) string, created func(string) int64) {
	sort.SliceStable(s, func(i, j int) bool {
		ci, cj := created(idAt(i)), created(idAt(j))
		if ci != cj {
			return ci < cj
		}
		return idAt(i) < idAt(j)
	})
}

// Snapshots lists every snapshot, oldest first.
func (e *Emulator) Snapshots() []SnapshotView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []SnapshotView
	for _, s := range e.st.Snapshots {
		out = append(out, SnapshotView{ID: s.ID, Name: s.Name, Status: s.Status, VolumeID: s.VolumeID, SizeGiB: s.Size,
			ProjectID: s.ProjectID, Metadata: copyMap(s.Metadata), DataFile: s.DataFile})
	}
	e.sortByCreated(out, func(i int) string { return out[i].ID }, func(id string) int64 {
		return e.st.Snapshots[id].CreatedAt.UnixNano()
	})
	return out
}

// Backups lists every backup, oldest first.
func (e *Emulator) Backups() []BackupView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []BackupView
	for _, b := range e.st.Backups {
		out = append(out, BackupView{ID: b.ID, Name: b.Name, Status: b.Status, VolumeID: b.VolumeID, SnapshotID: b.SnapshotID,
			SizeGiB: b.Size, ProjectID: b.ProjectID, DataFile: b.DataFile})
	}
	e.sortByCreated(out, func(i int) string { return out[i].ID }, func(id string) int64 {
		return e.st.Backups[id].CreatedAt.UnixNano()
	})
	return out
}

// Attachments lists every attachment in any state, oldest first.
func (e *Emulator) Attachments() []AttachmentView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var as []*attachment
	for _, a := range e.st.Attachments {
		as = append(as, a)
	}
	sortAttachments(as)
	out := make([]AttachmentView, 0, len(as))
	for _, a := range as {
		out = append(out, AttachmentView{ID: a.ID, ServerID: a.ServerID, VolumeID: a.VolumeID, Status: a.Status,
			Device: a.Device, Address: pciAddress(a.Slot), LoopDevice: a.LoopDevice})
	}
	return out
}
