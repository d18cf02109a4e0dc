package emulator

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

func (e *Emulator) novaRoutes(add addFunc) {
	add("GET", svcCompute, "/compute", true, (*Emulator).novaVersions)
	add("GET", svcCompute, "/compute/v2.1", true, (*Emulator).novaV21Version)
	add("GET", svcCompute, "/compute/v2.1/servers", false, (*Emulator).listServers)
	add("GET", svcCompute, "/compute/v2.1/servers/detail", false, (*Emulator).listServersDetail)
	add("GET", svcCompute, "/compute/v2.1/servers/{server_id}", false, (*Emulator).getServer)
	add("GET", svcCompute, "/compute/v2.1/servers/{server_id}/os-volume_attachments", false, (*Emulator).listServerAttachments)
	add("POST", svcCompute, "/compute/v2.1/servers/{server_id}/os-volume_attachments", false, (*Emulator).attachVolume)
	add("GET", svcCompute, "/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", false, (*Emulator).getServerAttachment)
	add("DELETE", svcCompute, "/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", false, (*Emulator).detachVolume)
	add("GET", svcCompute, "/compute/v2.1/os-availability-zone", false, (*Emulator).novaAZ)
}

func (e *Emulator) novaVersionDoc(base string) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": e.maxNova.String(), "min_version": "2.1",
		"updated":     "2013-07-23T11:33:21Z",
		"links":       []any{map[string]any{"rel": "self", "href": base + "/compute/v2.1/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (e *Emulator) novaVersions(q *req) {
	base := e.baseURLFor(q.r)
	v20 := map[string]any{"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
		"links": []any{map[string]any{"rel": "self", "href": base + "/compute/v2/"}}}
	writeJSON(q.w, http.StatusOK, map[string]any{"versions": []any{v20, e.novaVersionDoc(base)}})
}

func (e *Emulator) novaV21Version(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{"version": e.novaVersionDoc(e.baseURLFor(q.r))})
}

func (e *Emulator) serverBodyLocked(s *server, q *req, detail bool) map[string]any {
	base := e.baseURLFor(q.r)
	links := []any{map[string]any{"rel": "self", "href": base + "/compute/v2.1/servers/" + s.ID},
		map[string]any{"rel": "bookmark", "href": base + "/compute/servers/" + s.ID}}
	if !detail {
		return map[string]any{"id": s.ID, "name": s.Name, "links": links}
	}
	vols := []any{}
	for _, a := range e.st.attachmentsOfServer(s.ID) {
		item := map[string]any{"id": a.VolumeID}
		if q.mv.AtLeast("2.3") {
			item["delete_on_termination"] = a.DeleteOnTermination
		}
		vols = append(vols, item)
	}
	var task any
	if s.TaskState != "" {
		task = s.TaskState
	}
	b := map[string]any{
		"id": s.ID, "name": s.Name, "status": s.Status, "tenant_id": s.ProjectID, "user_id": demoUserID,
		"created": ntime(s.CreatedAt), "updated": ntime(s.CreatedAt), "hostId": "c0ffee" + s.ID[:8],
		"addresses": map[string]any{}, "metadata": map[string]any{}, "links": links,
		"image": "", "flavor": map[string]any{"id": "1", "links": []any{}},
		"OS-EXT-AZ:availability_zone": s.AZ, "OS-EXT-STS:task_state": task, "OS-EXT-STS:vm_state": strings.ToLower(s.Status),
		"OS-EXT-STS:power_state": 1, "os-extended-volumes:volumes_attached": vols,
		"accessIPv4": "", "accessIPv6": "", "config_drive": "True", "key_name": nil, "progress": 0,
		"OS-SRV-USG:launched_at":   time.Time(s.CreatedAt).UTC().Format("2006-01-02T15:04:05.000000"),
		"OS-SRV-USG:terminated_at": nil, "OS-DCF:diskConfig": "MANUAL",
	}
	if q.mv.AtLeast("2.26") {
		b["tags"] = []string{}
	}
	if q.mv.AtLeast("2.47") {
		b["flavor"] = map[string]any{"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0, "extra_specs": map[string]any{}}
	}
	return b
}

func (e *Emulator) serverLocked(q *req, id string) *server {
	s := e.st.Servers[id]
	if s == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Instance %s could not be found.", id))
		return nil
	}
	return s
}

func (e *Emulator) listServers(q *req)       { e.listServersCommon(q, false) }
func (e *Emulator) listServersDetail(q *req) { e.listServersCommon(q, true) }

func (e *Emulator) listServersCommon(q *req, detail bool) {
	// Nova's name filter is a regular expression search.
	name, err := regexp.Compile(q.r.URL.Query().Get("name"))
	if err != nil {
		writeError(q.w, http.StatusBadRequest, "Invalid filter field: name: "+err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []any{}
	for _, id := range e.st.ServerOrder {
		s := e.st.Servers[id]
		if s == nil || !name.MatchString(s.Name) {
			continue
		}
		out = append(out, e.serverBodyLocked(s, q, detail))
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"servers": out})
}

func (e *Emulator) getServer(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.serverLocked(q, q.p("server_id")); s != nil {
		writeJSON(q.w, http.StatusOK, map[string]any{"server": e.serverBodyLocked(s, q, true)})
	}
}

func (e *Emulator) attachmentBodyLocked(a *attachment, q *req) map[string]any {
	b := map[string]any{"device": a.Device, "serverId": a.ServerID, "volumeId": a.VolumeID}
	if !q.mv.AtLeast("2.89") {
		b["id"] = a.VolumeID
	}
	if q.mv.AtLeast("2.70") {
		var tag any
		if a.Tag != "" {
			tag = a.Tag
		}
		b["tag"] = tag
	}
	if q.mv.AtLeast("2.79") {
		b["delete_on_termination"] = a.DeleteOnTermination
	}
	if q.mv.AtLeast("2.89") {
		b["attachment_id"] = a.ID
		b["bdm_uuid"] = a.BDMID
	}
	return b
}

func (e *Emulator) listServerAttachments(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.serverLocked(q, q.p("server_id"))
	if s == nil {
		return
	}
	out := []any{}
	for _, a := range e.st.attachmentsOfServer(s.ID) {
		out = append(out, e.attachmentBodyLocked(a, q))
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"volumeAttachments": out})
}

func (e *Emulator) getServerAttachment(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.serverLocked(q, q.p("server_id"))
	if s == nil {
		return
	}
	a := e.st.attachmentFor(s.ID, q.p("volume_id"))
	if a == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume %s is not attached to %s", q.p("volume_id"), s.ID))
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"volumeAttachment": e.attachmentBodyLocked(a, q)})
}

func busyConflict(q *req, s *server, action string) bool {
	if s.TaskState != "" {
		writeError(q.w, http.StatusConflict, fmt.Sprintf("Cannot '%s' instance %s while it is in task_state %s", action, s.ID, s.TaskState))
		return true
	}
	if s.Status != "ACTIVE" && s.Status != "SHUTOFF" {
		writeError(q.w, http.StatusConflict, fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state %s", action, s.ID, strings.ToLower(s.Status)))
		return true
	}
	return false
}

func (e *Emulator) attachVolume(q *req) {
	var body struct {
		VolumeAttachment *struct {
			VolumeID            string `json:"volumeId"`
			Device              string `json:"device"`
			Tag                 string `json:"tag"`
			DeleteOnTermination bool   `json:"delete_on_termination"`
		} `json:"volumeAttachment"`
	}
	if !decodeBody(q, &body) {
		return
	}
	if body.VolumeAttachment == nil || body.VolumeAttachment.VolumeID == "" {
		writeError(q.w, http.StatusBadRequest, "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property")
		return
	}
	in := body.VolumeAttachment
	if in.Tag != "" && !q.mv.AtLeast("2.49") {
		writeError(q.w, http.StatusBadRequest, "Additional properties are not allowed ('tag' was unexpected)")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.serverLocked(q, q.p("server_id"))
	if s == nil {
		return
	}
	v := e.st.Volumes[in.VolumeID]
	if v == nil || v.ProjectID != q.tok.ProjectID {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume %s could not be found.", in.VolumeID))
		return
	}
	if busyConflict(q, s, "attach_volume") {
		return
	}
	if v.Multiattach && !q.mv.AtLeast("2.60") {
		writeError(q.w, http.StatusBadRequest, "Multiattach volumes are only supported starting with compute API version 2.60.")
		return
	}
	// Real Nova (Zed, checked with the openstack-rig) answers 400
	// InvalidVolume for every refused attach of a volume that is not
	// free: attached here or elsewhere, or in a status Cinder will not
	// reserve. The driver classifies both 400 and 409 as a conflict.
	existing := e.st.attachmentsOfVolume(v.ID)
	if len(existing) > 0 && (!v.Multiattach || e.st.attachmentFor(s.ID, v.ID) != nil) {
		servers := make([]string, 0, len(existing))
		for _, a := range existing {
			servers = append(servers, a.ServerID)
		}
		sort.Strings(servers)
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: volume %s is already attached to instances: %s", v.ID, strings.Join(servers, ",")))
		return
	}
	okStatus := v.Status == "available" || (v.Multiattach && (v.Status == "in-use" || v.Status == "reserved" || v.Status == "attaching"))
	if !okStatus {
		writeError(q.w, http.StatusBadRequest, fmt.Sprintf("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", v.ID, v.Status))
		return
	}
	used := map[byte]bool{'a': true} // root disk
	for _, a := range e.st.attachmentsOfServer(s.ID) {
		used[a.Device[len(a.Device)-1]] = true
	}
	var letter byte
	for c := byte('b'); c < 'a'+byte(e.opts.MaxDevicesPerServer); c++ {
		if !used[c] {
			letter = c
			break
		}
	}
	if letter == 0 {
		writeError(q.w, http.StatusForbidden, fmt.Sprintf("The maximum allowed number of disk devices (%d) to attach to a single instance has been exceeded.", e.opts.MaxDevicesPerServer))
		return
	}
	now := time.Now().UTC()
	f := e.CurrentFaults()
	a := &attachment{
		ID: newUUID(), BDMID: newUUID(), VolumeID: v.ID, ServerID: s.ID, Status: "reserved",
		Device: "/dev/vd" + string(letter), Slot: 5 + int(letter-'a'), Tag: in.Tag,
		DeleteOnTermination: in.DeleteOnTermination, CreatedAt: now, Stuck: f.StuckReserved,
	}
	e.st.Attachments[a.ID] = a
	e.recomputeVolumeStatusLocked(v)
	e.markDirty()
	if !a.Stuck {
		e.scheduleAttach(a.ID)
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"volumeAttachment": e.attachmentBodyLocked(a, q)})
}

// scheduleAttach moves an attachment reserved -> attaching -> attached, the
// way Nova drives Cinder's attachment API (create, update, complete).
func (e *Emulator) scheduleAttach(id string) {
	e.later("attach", 0.3, func() {
		stuck := e.CurrentFaults().StuckAttaching
		e.mu.Lock()
		defer e.mu.Unlock()
		a := e.st.Attachments[id]
		if a == nil || a.Status != "reserved" {
			return
		}
		a.Status = "attaching"
		a.Stuck = stuck
		if v := e.st.Volumes[a.VolumeID]; v != nil {
			e.recomputeVolumeStatusLocked(v)
		}
		e.markDirty()
		if !stuck {
			e.later("attach", 0.7, func() { e.completeAttach(id) })
		}
	})
}

func (e *Emulator) completeAttach(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.st.Attachments[id]
	if a == nil || a.Status != "attaching" {
		return
	}
	v := e.st.Volumes[a.VolumeID]
	if v == nil {
		return
	}
	s := e.st.Servers[a.ServerID]
	if s != nil && s.Local {
		e.plug(a, v)
	}
	if s != nil && s.Guest != nil && !e.plugIntoGuestLocked(a, v, *s.Guest) {
		return
	}
	a.Status = "attached"
	a.AttachedAt = time.Now().UTC()
	e.recomputeVolumeStatusLocked(v)
	e.markDirty()
}

// resumeStuck continues attachments held by a stuck fault that was cleared.
func (e *Emulator) resumeStuck(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.st.Attachments {
		if !a.Stuck {
			continue
		}
		id := a.ID
		switch {
		case a.Status == "reserved" && !f.StuckReserved:
			a.Stuck = false
			e.scheduleAttach(id)
		case a.Status == "attaching" && !f.StuckAttaching:
			a.Stuck = false
			e.later("attach", 0.7, func() { e.completeAttach(id) })
		}
	}
}

// recomputeVolumeStatusLocked derives an attachment-related volume status
// from its attachments, leaving other states (creating, extending, ...) alone.
func (e *Emulator) recomputeVolumeStatusLocked(v *volume) {
	switch v.Status {
	case "available", "in-use", "reserved", "attaching", "detaching":
	default:
		return
	}
	atts := e.st.attachmentsOfVolume(v.ID)
	status := "available"
	attached := false
	for _, a := range atts {
		if a.Status == "attached" {
			attached = true
		} else {
			status = a.Status
		}
	}
	if attached && (status == "available" || v.Multiattach) {
		status = "in-use"
	}
	if v.Status != status {
		v.Status = status
		v.UpdatedAt = time.Now().UTC()
	}
}

func (e *Emulator) detachVolume(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.serverLocked(q, q.p("server_id"))
	if s == nil {
		return
	}
	volID := q.p("volume_id")
	v := e.st.Volumes[volID]
	if v == nil || v.ProjectID != q.tok.ProjectID {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume %s could not be found.", volID))
		return
	}
	a := e.st.attachmentFor(s.ID, volID)
	if a == nil {
		writeError(q.w, http.StatusNotFound, fmt.Sprintf("Volume %s is not attached to %s", volID, s.ID))
		return
	}
	if busyConflict(q, s, "detach_volume") {
		return
	}
	switch a.Status {
	case "reserved", "attaching":
		// Nova rolls back an unfinished attachment: nothing was plugged.
		delete(e.st.Attachments, a.ID)
		e.recomputeVolumeStatusLocked(v)
	case "detaching":
		writeError(q.w, http.StatusBadRequest, "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
		return
	default:
		a.Status = "detaching"
		e.recomputeVolumeStatusLocked(v)
		id := a.ID
		e.later("detach", 1, func() { e.finishDetach(id) })
	}
	e.markDirty()
	q.w.WriteHeader(http.StatusAccepted)
}

func (e *Emulator) finishDetach(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.st.Attachments[id]
	if a == nil || a.Status != "detaching" {
		return
	}
	if a.LoopDevice != "" {
		e.unplug(a)
	}
	if a.GuestDevice != "" && !e.unplugFromGuestLocked(a) {
		return
	}
	delete(e.st.Attachments, id)
	if v := e.st.Volumes[a.VolumeID]; v != nil {
		e.recomputeVolumeStatusLocked(v)
	}
	e.markDirty()
}

func (e *Emulator) novaAZ(q *req) {
	out := []any{}
	for _, az := range e.opts.AvailabilityZones {
		out = append(out, map[string]any{"zoneName": az, "zoneState": map[string]any{"available": true}, "hosts": nil})
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}
