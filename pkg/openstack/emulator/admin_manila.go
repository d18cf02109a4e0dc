package emulator

import (
	"net/http"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

// The admin API's Manila part (no token; not counted, no faults), for
// scripts and other processes; tests in Go use e.Manila().
func (e *Emulator) manilaAdminRoutes(add addFunc) {
	if e.manila == nil {
		return
	}
	add("GET", svcAdmin, "/admin/manila/state", true, (*Emulator).adminManilaState)
	add("PUT", svcAdmin, "/admin/manila/shares/{share_id}/status", true, (*Emulator).adminShareStatus)
	add("DELETE", svcAdmin, "/admin/manila/shares/{share_id}", true, (*Emulator).adminForceDeleteShare)
	add("PUT", svcAdmin, "/admin/manila/access-rules/{access_id}/hold", true, (*Emulator).adminHoldAccess)
	add("PUT", svcAdmin, "/admin/manila/quotas/{project}", true, (*Emulator).adminShareQuota)
	add("POST", svcAdmin, "/admin/manila/share-types", true, (*Emulator).adminAddShareType)
}

func (e *Emulator) adminManilaState(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{"shares": e.manila.Shares(), "snapshots": e.manila.Snapshots()})
}

func (e *Emulator) adminShareStatus(q *req) {
	var in struct {
		Status string `json:"status"`
	}
	if !decodeBody(q, &in) {
		return
	}
	if !e.manila.SetShareStatus(q.p("share_id"), in.Status) {
		writeError(q.w, http.StatusNotFound, "no such share")
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminForceDeleteShare(q *req) {
	if !e.manila.ForceDeleteShare(q.p("share_id")) {
		writeError(q.w, http.StatusConflict, "no such share, or it has snapshots")
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// adminHoldAccess takes {"hold": true|false}.
func (e *Emulator) adminHoldAccess(q *req) {
	var in struct {
		Hold bool `json:"hold"`
	}
	if !decodeBody(q, &in) {
		return
	}
	if !e.manila.HoldAccessRule(q.p("access_id"), in.Hold) {
		writeError(q.w, http.StatusNotFound, "no such access rule")
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// adminShareQuota takes manila.Quota's JSON; omitted fields keep their value.
func (e *Emulator) adminShareQuota(q *req) {
	pid := e.ProjectID(q.p("project"))
	if pid == "" {
		pid = q.p("project")
	}
	qt := e.manila.QuotaOf(pid)
	if !decodeBody(q, &qt) {
		return
	}
	e.manila.SetQuota(pid, qt)
	writeJSON(q.w, http.StatusOK, qt)
}

// adminAddShareType takes {"Name":"gold","Protocol":"NFS","ExtraSpecs":{...},"Default":false}.
func (e *Emulator) adminAddShareType(q *req) {
	var ts manila.ShareTypeSpec
	if !decodeBody(q, &ts) {
		return
	}
	if ts.Name == "" {
		writeError(q.w, http.StatusBadRequest, "Name is required")
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"id": e.manila.AddShareType(ts)})
}
