package openstack

import (
	"encoding/json"
	"strings"
	"time"
)

// Wire types: the JSON Cinder and Nova send, decoded leniently (times in
// any of the formats the services use) and converted to our own types.

type osTime time.Time

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999",
	"2006-01-02 15:04:05",
}

func (t *osTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil || s == "" {
		return nil // null or not a string: leave zero
	}
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			*t = osTime(v.UTC())
			return nil
		}
	}
	return nil
}

// flexBool reads true, "true", "True" and "<is> True".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil
	}
	switch x := v.(type) {
	case bool:
		*f = flexBool(x)
	case string:
		*f = flexBool(strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(x, "<is>")), "true"))
	}
	return nil
}

type wireAttachment struct {
	AttachmentID string `json:"attachment_id"`
	ID           string `json:"id"`
	ServerID     string `json:"server_id"`
	Device       string `json:"device"`
	AttachedAt   osTime `json:"attached_at"`
}

type wireVolume struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Status           string            `json:"status"`
	MigrationStatus  string            `json:"migration_status"`
	Size             int               `json:"size"`
	AvailabilityZone string            `json:"availability_zone"`
	VolumeType       string            `json:"volume_type"`
	Multiattach      flexBool          `json:"multiattach"`
	Bootable         flexBool          `json:"bootable"`
	SnapshotID       string            `json:"snapshot_id"`
	SourceVolID      string            `json:"source_volid"`
	BackupID         string            `json:"backup_id"`
	GroupID          string            `json:"group_id"`
	Metadata         map[string]string `json:"metadata"`
	Attachments      []wireAttachment  `json:"attachments"`
	CreatedAt        osTime            `json:"created_at"`
	UpdatedAt        osTime            `json:"updated_at"`
}

func (w *wireVolume) toVolume() Volume {
	v := Volume{
		ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		MigrationStatus: w.MigrationStatus, SizeGiB: w.Size, AvailabilityZone: w.AvailabilityZone,
		VolumeType: w.VolumeType, Multiattach: bool(w.Multiattach), Bootable: bool(w.Bootable),
		SnapshotID: w.SnapshotID, SourceVolumeID: w.SourceVolID, BackupID: w.BackupID, GroupID: w.GroupID,
		Metadata: w.Metadata, CreatedAt: time.Time(w.CreatedAt), UpdatedAt: time.Time(w.UpdatedAt),
	}
	for _, a := range w.Attachments {
		id := a.AttachmentID
		if id == "" {
			id = a.ID
		}
		v.Attachments = append(v.Attachments, VolumeAttachment{
			AttachmentID: id, ServerID: a.ServerID, Device: a.Device, AttachedAt: time.Time(a.AttachedAt),
		})
	}
	return v
}

type wireLink struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

type wireSnapshot struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Status      string            `json:"status"`
	VolumeID    string            `json:"volume_id"`
	Size        int               `json:"size"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   osTime            `json:"created_at"`
	GroupSnap   string            `json:"group_snapshot_id"`
}

func (w *wireSnapshot) toSnapshot() Snapshot {
	return Snapshot{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		VolumeID: w.VolumeID, SizeGiB: w.Size, Metadata: w.Metadata, CreatedAt: time.Time(w.CreatedAt),
		GroupSnapshotID: w.GroupSnap}
}

type wireBackup struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Status           string            `json:"status"`
	VolumeID         string            `json:"volume_id"`
	SnapshotID       string            `json:"snapshot_id"`
	Size             int               `json:"size"`
	AvailabilityZone string            `json:"availability_zone"`
	Metadata         map[string]string `json:"metadata"`
	FailReason       string            `json:"fail_reason"`
	CreatedAt        osTime            `json:"created_at"`
}

func (w *wireBackup) toBackup() Backup {
	return Backup{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		VolumeID: w.VolumeID, SnapshotID: w.SnapshotID, SizeGiB: w.Size,
		AvailabilityZone: w.AvailabilityZone, Metadata: w.Metadata, FailReason: w.FailReason,
		CreatedAt: time.Time(w.CreatedAt)}
}

// nextMarker returns the marker for the next page from a *_links list: the
// "marker" query value of the "next" link, else the last item's id when
// the page was full.
func nextMarker(links []wireLink, lastID string, got, limit int) string {
	for _, l := range links {
		if l.Rel != "next" {
			continue
		}
		if i := strings.Index(l.Href, "marker="); i >= 0 {
			m := l.Href[i+len("marker="):]
			if j := strings.IndexByte(m, '&'); j >= 0 {
				m = m[:j]
			}
			return m
		}
		return lastID
	}
	if limit > 0 && got >= limit {
		return lastID
	}
	return ""
}

func timeOf(t osTime) time.Time { return time.Time(t) }
