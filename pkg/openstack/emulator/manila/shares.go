package manila

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

func (s *Service) shareRoutes(add func(string, string, host.Handler)) {
	add("POST", "/shares", s.createShare)
	add("GET", "/shares", s.listShares(false))
	add("GET", "/shares/detail", s.listShares(true))
	add("GET", "/shares/{share_id}", s.getShare)
	add("PUT", "/shares/{share_id}", s.updateShare)
	add("DELETE", "/shares/{share_id}", s.deleteShare)
	add("POST", "/shares/{share_id}/action", s.shareAction)
	add("GET", "/shares/{share_id}/export_locations", s.listExportLocations)
	add("GET", "/shares/{share_id}/export_locations/{export_id}", s.getExportLocation)
	add("GET", "/shares/{share_id}/metadata", s.shareMetadata(metaGet))
	add("POST", "/shares/{share_id}/metadata", s.shareMetadata(metaMerge))
	add("PUT", "/shares/{share_id}/metadata", s.shareMetadata(metaReplace))
	add("GET", "/shares/{share_id}/metadata/{key}", s.shareMetadata(metaGetKey))
	add("DELETE", "/shares/{share_id}/metadata/{key}", s.shareMetadata(metaDeleteKey))
}

// visibleShareLocked returns the caller's share or answers 404: another
// project's share is as absent as a missing one.
func (s *Service) visibleShareLocked(q *host.Request, id string) *share {
	return ownedLocked(q, s.st.Shares, id, "")
}

type createShareIn struct {
	ShareProto       string            `json:"share_proto"`
	Size             any               `json:"size"`
	Name             string            `json:"name"`
	DisplayName      string            `json:"display_name"`
	Description      string            `json:"description"`
	ShareType        string            `json:"share_type"`
	VolumeType       string            `json:"volume_type"`
	SnapshotID       string            `json:"snapshot_id"`
	IsPublic         bool              `json:"is_public"`
	Metadata         map[string]string `json:"metadata"`
	ShareNetworkID   string            `json:"share_network_id"`
	ShareGroupID     string            `json:"share_group_id"`
	AvailabilityZone string            `json:"availability_zone"`
	SchedulerHints   map[string]any    `json:"scheduler_hints"`
}

// sizeOf reads Manila's size field, which may be a number or a string.
func sizeOf(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) && x > 0 {
			return int(x), true
		}
	case string:
		var n int
		if _, err := fmt.Sscanf(x, "%d", &n); err == nil && fmt.Sprint(n) == x && n > 0 {
			return n, true
		}
	}
	return 0, false
}

// createShare checks the request in Zed's order (protocol, snapshot, size,
// type, network, zone, hints, quota), each refusal worded as the rig's.
func (s *Service) createShare(q *host.Request) {
	var body struct {
		Share *createShareIn `json:"share"`
	}
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	in := body.Share
	if in == nil {
		host.WriteFault(q.W, http.StatusUnprocessableEntity, "Unable to process the contained instructions")
		return
	}
	if in.ShareProto == "" || in.Size == nil && in.SnapshotID == "" {
		// Zed fails on a missing protocol or size (checked on the rig).
		host.WriteFault(q.W, http.StatusInternalServerError, "The server has either erred or is incapable of performing the requested operation.")
		return
	}
	proto := strings.ToUpper(in.ShareProto)
	if !s.protocolEnabled(q, in.ShareProto) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.sourceSnapshotLocked(q, in.SnapshotID)
	if !ok {
		return
	}
	size, ok := s.shareSize(q, in.Size, snap)
	if !ok {
		return
	}
	t, ok := s.shareTypeForLocked(q, in, snap)
	if !ok {
		return
	}
	if in.ShareNetworkID != "" {
		if sn := s.st.ShareNetworks[in.ShareNetworkID]; sn == nil || sn.ProjectID != q.ProjectID {
			host.WriteFault(q.W, http.StatusNotFound, fmt.Sprintf("Share network %s could not be found.", in.ShareNetworkID))
			return
		}
	}
	az, ok := s.zoneForLocked(q, in.AvailabilityZone, snap)
	if !ok || (q.MV.AtLeast("2.65") && !s.hintsExistLocked(q, in.SchedulerHints)) || !s.checkShareQuotaLocked(q, size, true) {
		return
	}
	name := in.Name
	if name == "" {
		name = in.DisplayName
	}
	sh := &share{
		ID: host.NewUUID(), InstanceID: host.NewUUID(), Name: name, Description: in.Description, Status: "creating",
		Proto: proto, TypeID: t.ID, AZ: az, ProjectID: q.ProjectID, UserID: q.UserID, SnapshotID: in.SnapshotID,
		ShareNetworkID: in.ShareNetworkID, ShareGroupID: in.ShareGroupID, IsPublic: in.IsPublic, Size: size,
		Metadata: copyMap(in.Metadata), CreatedAt: time.Now().UTC(),
		// A share from a snapshot takes its parent's zone at once: the
		// create response already names it (checked on the rig).
		Scheduled: snap != nil, AZExplicit: in.AvailabilityZone != "",
	}
	s.st.Shares[sh.ID] = sh
	s.h.MarkDirty()
	resp := s.shareBodyLocked(q, sh)
	s.scheduleCreateLocked(sh, t, q.RequestID)
	// Manila answers a create with 200, not 202 (checked on Zed).
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share": resp})
}

func (s *Service) protocolEnabled(q *host.Request, proto string) bool {
	if slices.Contains(s.opts.EnabledProtocols, strings.ToUpper(proto)) {
		return true
	}
	quoted := make([]string, len(s.opts.EnabledProtocols))
	for i, p := range s.opts.EnabledProtocols {
		quoted[i] = "'" + p + "'"
	}
	badRequest(q, fmt.Sprintf("Invalid input received: Invalid share protocol provided: %s. It is either disabled or unsupported. Available protocols: [%s].",
		proto, strings.Join(quoted, ", ")))
	return false
}

// sourceSnapshotLocked returns the snapshot a share is made from (nil for
// none), or answers why it cannot be used.
func (s *Service) sourceSnapshotLocked(q *host.Request, id string) (*snapshot, bool) {
	if id == "" {
		return nil, true
	}
	snap := s.st.Snapshots[id]
	if snap == nil || snap.ProjectID != q.ProjectID {
		host.WriteFault(q.W, http.StatusNotFound, fmt.Sprintf("ShareSnapshotNotFound: Snapshot %s could not be found.", id))
		return nil, false
	}
	if snap.Status != "available" {
		badRequest(q, fmt.Sprintf("Invalid share snapshot: status must be available, but current status is: %s.", snap.Status))
		return nil, false
	}
	return snap, true
}

// shareSize reads the requested size; a share from a snapshot defaults to
// the snapshot's and may not be smaller.
func (s *Service) shareSize(q *host.Request, v any, snap *snapshot) (int, bool) {
	size, ok := sizeOf(v)
	if v == nil && snap != nil {
		size, ok = snap.Size, true
	}
	if !ok {
		badRequest(q, fmt.Sprintf("Invalid input received: Share size '%v' must be an integer and greater than 0.", sizeText(v)))
		return 0, false
	}
	if snap != nil && size < snap.Size {
		badRequest(q, fmt.Sprintf("Invalid input received: Share size '%d' must be equal or greater than snapshot size (%d).", size, snap.Size))
		return 0, false
	}
	return size, true
}

// shareTypeForLocked is the named type, else the snapshot's share's, else
// the default.
func (s *Service) shareTypeForLocked(q *host.Request, in *createShareIn, snap *snapshot) (*shareType, bool) {
	ref := in.ShareType
	if ref == "" {
		ref = in.VolumeType
	}
	var t *shareType
	switch {
	case ref != "":
		t = s.st.typeByNameOrID(ref)
	case snap != nil:
		if parent := s.st.Shares[snap.ShareID]; parent != nil {
			t = s.st.Types[parent.TypeID]
		}
	default:
		t = s.st.defaultType()
	}
	if t == nil {
		host.WriteFault(q.W, http.StatusNotFound, "Share type not found.")
		return nil, false
	}
	if snap != nil && !isTrue(t.ExtraSpecs["create_share_from_snapshot_support"]) {
		badRequest(q, fmt.Sprintf("Invalid input received: A new share may not be created from snapshot '%s', because the snapshot's parent share does not have that capability.", snap.ID))
		return nil, false
	}
	return t, true
}

// zoneForLocked is the named zone (which must exist), else the snapshot's
// share's, else the default.
func (s *Service) zoneForLocked(q *host.Request, az string, snap *snapshot) (string, bool) {
	if az != "" {
		if _, ok := s.st.AZIDs[az]; !ok {
			host.WriteFault(q.W, http.StatusNotFound, "Availability zone %(id)s could not be found.")
			return "", false
		}
		return az, true
	}
	if snap != nil {
		if parent := s.st.Shares[snap.ShareID]; parent != nil && parent.AZ != "" {
			return parent.AZ, true
		}
	}
	return s.h.AvailabilityZones()[0], true
}

// hintsExistLocked checks that the shares scheduler hints name (2.65,
// comma-separated ids) exist; Zed answers an unknown one with 404 and
// ignores hints it does not know.
func (s *Service) hintsExistLocked(q *host.Request, hints map[string]any) bool {
	for _, k := range []string{"same_host", "different_host"} {
		ids, _ := hints[k].(string)
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id == "" {
				continue
			}
			if sh := s.st.Shares[id]; sh == nil || sh.ProjectID != q.ProjectID {
				host.WriteFault(q.W, http.StatusNotFound, fmt.Sprintf("ShareNotFound: Share %s could not be found.", id))
				return false
			}
		}
	}
	return true
}

func sizeText(v any) string {
	if v == nil {
		return "None"
	}
	return fmt.Sprint(v)
}

// scheduleCreateLocked moves a new share to its end state: the
// scheduler's choice (or its failure) and the driver's work after the
// create latency; a share from a snapshot passes creating_from_snapshot
// and completes on the share manager's periodic task (share_restore).
func (s *Service) scheduleCreateLocked(sh *share, t *shareType, requestID string) {
	id := sh.ID
	// Failures as the rig gives them: (action, detail) of the user message.
	failAction, fail, undeletable := "001", "", false
	switch {
	case t.Protocol != "" && t.Protocol != sh.Proto:
		fail = "008" // the scheduler's capabilities filter
	case sh.ShareNetworkID != "" && !isTrue(t.ExtraSpecs["driver_handles_share_servers"]):
		// The driver refuses a share network it does not expect, and the
		// share cannot be deleted afterwards (error_deleting, 007/001).
		failAction, fail, undeletable = "002", "003", true
	case s.h.Chance(s.h.Faults().ShareErrorRate):
		fail = "002"
	}
	if sh.SnapshotID == "" || fail != "" {
		s.h.Later(OpShareCreate, 1, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			sh := s.st.Shares[id]
			if sh == nil || sh.Status != "creating" {
				return
			}
			if fail != "" {
				sh.Undeletable = undeletable
				s.failShareLocked(sh, failAction, fail, requestID)
				return
			}
			s.finishCreateLocked(sh)
		})
		return
	}
	s.h.Later(OpShareCreate, 0.5, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sh := s.st.Shares[id]; sh != nil && sh.Status == "creating" {
			sh.Status, sh.Scheduled, sh.UpdatedAt = "creating_from_snapshot", true, time.Now().UTC()
			s.h.MarkDirty()
		}
	})
	s.h.Later(OpShareRestore, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sh := s.st.Shares[id]; sh != nil && (sh.Status == "creating_from_snapshot" || sh.Status == "creating") {
			s.finishCreateLocked(sh)
		}
	})
}

// failShareLocked puts a share in error with a user message, as the
// scheduler does when no backend fits (action 001 "allocate host").
func (s *Service) failShareLocked(sh *share, action, detail, requestID string) {
	sh.Status, sh.UpdatedAt = "error", time.Now().UTC()
	s.addMessageLocked(sh.ProjectID, sh.ID, requestID, action, detail)
	s.h.MarkDirty()
}

// finishCreateLocked makes the share's directory (a copy of its snapshot's
// when it has one) and export location, and makes it available.
func (s *Service) finishCreateLocked(sh *share) {
	var err error
	if sh.SnapshotID != "" {
		err = copyTree(filepath.Join(s.snapshotsRoot(), sh.SnapshotID), filepath.Join(s.sharesRoot(), sh.ID))
	} else {
		err = s.makeShareDir(sh.ID)
	}
	if err != nil {
		s.failShareLocked(sh, "002", "001", "")
		return
	}
	path := "/volumes/_nogroup/" + sh.InstanceID + "/" + host.NewUUID()
	if sh.Proto == "CEPHFS" {
		path = s.opts.CephMonitors + ":" + path
	} else {
		path = s.opts.NFSHost + ":" + path
	}
	sh.Exports = []*exportLocation{{ID: host.NewUUID(), Path: path}}
	sh.Status, sh.Scheduled, sh.UpdatedAt = "available", true, time.Now().UTC()
	s.h.MarkDirty()
}

func (s *Service) getShare(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share": s.shareBodyLocked(q, sh)})
}

func (s *Service) updateShare(q *host.Request) {
	var body struct {
		Share map[string]any `json:"share"`
	}
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	for k, v := range body.Share {
		switch k {
		case "display_name", "name":
			sh.Name = fmt.Sprint(v)
		case "display_description", "description":
			sh.Description = fmt.Sprint(v)
		case "is_public":
			b, _ := v.(bool)
			sh.IsPublic = b
		}
	}
	sh.UpdatedAt = time.Now().UTC()
	s.h.MarkDirty()
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share": s.shareBodyLocked(q, sh)})
}

// deleteShare refuses a share that has snapshots or is busy with 403 and
// Zed's uninterpolated "Invalid share: %(reason)s." (checked on the rig).
// Its access rules go with it.
func (s *Service) deleteShare(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	deletable := sh.Status == "available" || sh.Status == "error" || sh.Status == "inactive" ||
		sh.Status == "error_deleting" || sh.Status == "extending_error" || sh.Status == "shrinking_error"
	if len(s.st.snapshotsOf(sh.ID)) > 0 || !deletable {
		host.WriteFault(q.W, http.StatusForbidden, "Invalid share: %(reason)s.")
		return
	}
	sh.Status, sh.UpdatedAt = "deleting", time.Now().UTC()
	s.h.MarkDirty()
	id := sh.ID
	s.h.Later(OpShareDelete, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		sh := s.st.Shares[id]
		if sh == nil || sh.Status != "deleting" {
			return
		}
		if sh.Undeletable {
			// No user message: the rig leaves none for this delete.
			sh.Status, sh.UpdatedAt = "error_deleting", time.Now().UTC()
			s.h.MarkDirty()
			return
		}
		s.removeShareLocked(id)
	})
	q.W.WriteHeader(http.StatusAccepted)
}

// ForceDeleteShare removes a share whatever its status, with its rules and
// directory (an admin's force_delete). Its snapshots must be gone first.
func (s *Service) ForceDeleteShare(shareID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Shares[shareID]; !ok || len(s.st.snapshotsOf(shareID)) > 0 {
		return false
	}
	s.removeShareLocked(shareID)
	return true
}

// removeShareLocked drops a share with its rules and directory.
func (s *Service) removeShareLocked(id string) {
	for rid, r := range s.st.Access {
		if r.ShareID == id {
			delete(s.st.Access, rid)
		}
	}
	delete(s.st.Shares, id)
	removeTree(s.sharesRoot(), id)
	s.h.MarkDirty()
}

func (s *Service) listExportLocations(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	out := []any{}
	for _, el := range visibleExports(sh) {
		out = append(out, exportBody(q.MV, el, sh.CreatedAt, false))
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"export_locations": out})
}

func (s *Service) getExportLocation(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	for _, el := range visibleExports(sh) {
		if el.ID == q.P("export_id") {
			host.WriteJSON(q.W, http.StatusOK, map[string]any{"export_location": exportBody(q.MV, el, sh.CreatedAt, true)})
			return
		}
	}
	host.WriteFault(q.W, http.StatusNotFound, fmt.Sprintf("Export location '%s' not found.", q.P("export_id")))
}

// AddExportLocation gives a share another export location (tests of the
// driver's choice by preferred and admin-only). It returns false when the
// share has no export yet.
func (s *Service) AddExportLocation(shareID, path string, preferred, adminOnly bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.st.Shares[shareID]
	if sh == nil || len(sh.Exports) == 0 {
		return false
	}
	sh.Exports = append(sh.Exports, &exportLocation{ID: host.NewUUID(), Path: path, Preferred: preferred, IsAdminOnly: adminOnly})
	s.h.MarkDirty()
	return true
}

// SetShareStatus forces a share's status (as an admin's reset-state
// would): tests of error and error_deleting handling.
func (s *Service) SetShareStatus(shareID, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.st.Shares[shareID]
	if sh == nil {
		return false
	}
	sh.Status, sh.UpdatedAt = status, time.Now().UTC()
	s.h.MarkDirty()
	return true
}
