package manila

import (
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

func (s *Service) snapshotRoutes(add func(string, string, host.Handler)) {
	add("POST", "/snapshots", s.createSnapshot)
	add("GET", "/snapshots", s.listSnapshots(false))
	add("GET", "/snapshots/detail", s.listSnapshots(true))
	add("GET", "/snapshots/{snapshot_id}", s.getSnapshot)
	add("PUT", "/snapshots/{snapshot_id}", s.updateSnapshot)
	add("DELETE", "/snapshots/{snapshot_id}", s.deleteSnapshot)
	add("GET", "/snapshots/{snapshot_id}/metadata", s.snapshotMetadata(metaGet))
	add("POST", "/snapshots/{snapshot_id}/metadata", s.snapshotMetadata(metaMerge))
	add("PUT", "/snapshots/{snapshot_id}/metadata", s.snapshotMetadata(metaReplace))
	add("GET", "/snapshots/{snapshot_id}/metadata/{key}", s.snapshotMetadata(metaGetKey))
	add("DELETE", "/snapshots/{snapshot_id}/metadata/{key}", s.snapshotMetadata(metaDeleteKey))
}

func (s *Service) visibleSnapshotLocked(q *host.Request, id string) *snapshot {
	return ownedLocked(q, s.st.Snapshots, id, "")
}

// createSnapshot copies the share's directory at once (the snapshot holds
// the data of the moment it was asked for) and becomes available after
// the snapshot latency.
func (s *Service) createSnapshot(q *host.Request) {
	var body struct {
		Snapshot *struct {
			ShareID     string            `json:"share_id"`
			Name        string            `json:"name"`
			DisplayName string            `json:"display_name"`
			Description string            `json:"description"`
			Force       any               `json:"force"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"snapshot"`
	}
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	in := body.Snapshot
	if in == nil {
		host.WriteFault(q.W, http.StatusUnprocessableEntity, "Unable to process the contained instructions")
		return
	}
	if !q.MV.AtLeast("2.73") {
		in.Metadata = nil // ignored before 2.73 (checked on Zed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.st.Shares[in.ShareID]
	if sh == nil || sh.ProjectID != q.ProjectID {
		notFound(q)
		return
	}
	if t := s.st.Types[sh.TypeID]; t == nil || !isTrue(t.ExtraSpecs["snapshot_support"]) {
		badRequest(q, fmt.Sprintf("Snapshots cannot be created for share '%s' since it does not have that capability.", sh.ID))
		return
	}
	if sh.Status != "available" {
		badRequest(q, "Invalid share: Source share status must be available.")
		return
	}
	if !s.checkSnapshotQuotaLocked(q, sh.Size) {
		return
	}
	name := in.Name
	if name == "" {
		name = in.DisplayName
	}
	now := time.Now().UTC()
	sn := &snapshot{ID: host.NewUUID(), ShareID: sh.ID, Name: name, Description: in.Description, Status: "creating",
		Proto: sh.Proto, Size: sh.Size, ShareSize: sh.Size, ProjectID: q.ProjectID, UserID: q.UserID,
		Metadata: copyMap(in.Metadata), CreatedAt: now}
	if err := copyTree(filepath.Join(s.sharesRoot(), sh.ID), filepath.Join(s.snapshotsRoot(), sn.ID)); err != nil {
		host.WriteFault(q.W, http.StatusInternalServerError, "emulator: copying the share's data: "+err.Error())
		return
	}
	s.st.Snapshots[sn.ID] = sn
	s.h.MarkDirty()
	id := sn.ID
	s.h.Later(OpSnapshotCreate, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sn := s.st.Snapshots[id]; sn != nil && sn.Status == "creating" {
			sn.Status, sn.UpdatedAt = "available", time.Now().UTC()
			s.h.MarkDirty()
		}
	})
	host.WriteJSON(q.W, http.StatusAccepted, map[string]any{"snapshot": s.snapshotBody(q, sn)})
}

func (s *Service) getSnapshot(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.visibleSnapshotLocked(q, q.P("snapshot_id")); sn != nil {
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"snapshot": s.snapshotBody(q, sn)})
	}
}

func (s *Service) updateSnapshot(q *host.Request) {
	var body struct {
		Snapshot map[string]any `json:"snapshot"`
	}
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.visibleSnapshotLocked(q, q.P("snapshot_id"))
	if sn == nil {
		return
	}
	for k, v := range body.Snapshot {
		switch k {
		case "display_name", "name":
			sn.Name = fmt.Sprint(v)
		case "display_description", "description":
			sn.Description = fmt.Sprint(v)
		}
	}
	sn.UpdatedAt = time.Now().UTC()
	s.h.MarkDirty()
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"snapshot": s.snapshotBody(q, sn)})
}

func (s *Service) deleteSnapshot(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.visibleSnapshotLocked(q, q.P("snapshot_id"))
	if sn == nil {
		return
	}
	if sn.Status != "available" && sn.Status != "error" && sn.Status != "error_deleting" {
		badRequest(q, "Invalid share snapshot: Share Snapshot status must be one of ('available', 'error').")
		return
	}
	sn.Status, sn.UpdatedAt = "deleting", time.Now().UTC()
	s.h.MarkDirty()
	id := sn.ID
	s.h.Later(OpSnapshotDelete, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sn := s.st.Snapshots[id]; sn != nil && sn.Status == "deleting" {
			s.removeSnapshotLocked(id)
		}
	})
	q.W.WriteHeader(http.StatusAccepted)
}

func (s *Service) removeSnapshotLocked(id string) {
	delete(s.st.Snapshots, id)
	removeTree(s.snapshotsRoot(), id)
	s.h.MarkDirty()
}

func (s *Service) listSnapshots(detail bool) host.Handler {
	return func(q *host.Request) {
		lq, ok := parseList(q)
		if !ok {
			return
		}
		if !lq.sortable(q, "name", "display_name", "status", "size", "share_id", "share_proto", "project_id", "user_id") {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var items []item
		for _, sn := range s.st.Snapshots {
			if sn.ProjectID != q.ProjectID || !lq.text(q, "name", sn.Name) || !lq.text(q, "status", sn.Status) ||
				!lq.text(q, "share_id", sn.ShareID) || !lq.text(q, "description", sn.Description) ||
				(q.MV.AtLeast("2.73") && !lq.dict("metadata", sn.Metadata)) {
				continue
			}
			var body any
			if detail {
				body = s.snapshotBody(q, sn)
			} else {
				body = map[string]any{"id": sn.ID, "name": nullable(sn.Name), "links": s.links(q, "snapshots", sn.ID)}
			}
			items = append(items, item{id: sn.ID, createdAt: sn.CreatedAt, body: body,
				fields: map[string]string{"name": sn.Name, "display_name": sn.Name, "status": sn.Status, "size": fmt.Sprintf("%09d", sn.Size),
					"share_id": sn.ShareID, "share_proto": sn.Proto, "project_id": sn.ProjectID, "user_id": sn.UserID}})
		}
		lq.page(q, items, "snapshots", s.collectionURL(q, "snapshots"))
	}
}

func (s *Service) snapshotMetadata(op metaOp) host.Handler {
	return func(q *host.Request) {
		if !q.MV.AtLeast("2.73") {
			notFound(q)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		sn := s.visibleSnapshotLocked(q, q.P("snapshot_id"))
		if sn == nil {
			return
		}
		if metadataCall(q, op, &sn.Metadata) {
			s.h.MarkDirty()
		}
	}
}
