package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The admin API drives the emulator from shell scripts and other processes.
// It needs no token and is neither counted nor subject to faults.
func (e *Emulator) adminRoutes(add addFunc) {
	add("GET", svcAdmin, "/admin/faults", true, (*Emulator).adminGetFaults)
	add("PUT", svcAdmin, "/admin/faults", true, (*Emulator).adminPutFaults)
	add("GET", svcAdmin, "/admin/latency", true, (*Emulator).adminGetLatency)
	add("PUT", svcAdmin, "/admin/latency", true, (*Emulator).adminPutLatency)
	add("GET", svcAdmin, "/admin/counters", true, (*Emulator).adminGetCounters)
	add("POST", svcAdmin, "/admin/counters/reset", true, (*Emulator).adminResetCounters)
	add("GET", svcAdmin, "/admin/state", true, (*Emulator).adminState)
	add("POST", svcAdmin, "/admin/servers", true, (*Emulator).adminAddServer)
	add("PUT", svcAdmin, "/admin/servers/{server_id}/task_state", true, (*Emulator).adminTaskState)
	add("PUT", svcAdmin, "/admin/servers/{server_id}/guest", true, (*Emulator).adminServerGuest)
	add("DELETE", svcAdmin, "/admin/servers/{server_id}/guest", true, (*Emulator).adminServerGuest)
	add("POST", svcAdmin, "/admin/volume-types", true, (*Emulator).adminAddType)
	add("PUT", svcAdmin, "/admin/volumes/{volume_id}/status", true, (*Emulator).adminVolumeStatus)
	add("PUT", svcAdmin, "/admin/users/{user}/password", true, (*Emulator).adminPassword)
	add("POST", svcAdmin, "/admin/application-credentials", true, (*Emulator).adminAppCred)
	add("POST", svcAdmin, "/admin/trusts", true, (*Emulator).adminTrust)
	add("POST", svcAdmin, "/admin/tokens/expire", true, (*Emulator).adminExpireTokens)
	add("PUT", svcAdmin, "/admin/quotas/{project}", true, (*Emulator).adminQuota)
	add("GET", svcAdmin, "/admin/cloud.conf", true, (*Emulator).adminCloudConf)
}

// faultsDoc is Faults with retry_after as a Go duration string ("2s").
type faultsDoc struct {
	Faults
	RetryAfter string `json:"retry_after"`
}

// MarshalFaults renders faults the way GET /admin/faults does.
func MarshalFaults(f Faults) ([]byte, error) {
	return json.Marshal(faultsDoc{Faults: f, RetryAfter: f.RetryAfter.String()})
}

// UnmarshalFaults parses the body PUT /admin/faults accepts.
func UnmarshalFaults(b []byte) (Faults, error) {
	var d faultsDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return Faults{}, err
	}
	f := d.Faults
	if d.RetryAfter != "" {
		ra, err := time.ParseDuration(d.RetryAfter)
		if err != nil {
			return Faults{}, fmt.Errorf("retry_after: %w", err)
		}
		f.RetryAfter = ra
	}
	return f, nil
}

func (e *Emulator) adminGetFaults(q *req) {
	b, _ := MarshalFaults(e.CurrentFaults())
	q.w.Header().Set("Content-Type", "application/json")
	_, _ = q.w.Write(b)
}

func (e *Emulator) adminPutFaults(q *req) {
	var raw json.RawMessage
	if !decodeBody(q, &raw) {
		return
	}
	f, err := UnmarshalFaults(raw)
	if err != nil {
		writeError(q.w, http.StatusBadRequest, err.Error())
		return
	}
	e.SetFaults(f)
	e.adminGetFaults(q)
}

func (e *Emulator) adminGetLatency(q *req) {
	out := map[string]string{}
	for k, v := range e.Latencies() {
		out[k] = v.String()
	}
	writeJSON(q.w, http.StatusOK, out)
}

// adminPutLatency takes {"attach": "2s", "detach": "500ms"}.
func (e *Emulator) adminPutLatency(q *req) {
	var in map[string]string
	if !decodeBody(q, &in) {
		return
	}
	parsed := map[string]time.Duration{}
	for op, s := range in {
		if !e.knownOp(op) {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("unknown op %q", op))
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, fmt.Sprintf("%s: %v", op, err))
			return
		}
		parsed[op] = d
	}
	for op, d := range parsed {
		e.SetLatency(op, d)
	}
	e.adminGetLatency(q)
}

func (e *Emulator) adminGetCounters(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{"total": e.TotalCalls(), "counters": e.Counters()})
}

func (e *Emulator) adminResetCounters(q *req) {
	e.ResetCounters()
	q.w.WriteHeader(http.StatusNoContent)
}

// ServerView is a read-only copy of a server.
type ServerView struct {
	ID, Name, AZ string
	Local        bool
	TaskState    string
	Guest        *GuestSpec `json:",omitempty"`
}

// Servers lists the Nova servers in creation order.
func (e *Emulator) Servers() []ServerView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ServerView
	for _, id := range e.st.ServerOrder {
		if s := e.st.Servers[id]; s != nil {
			out = append(out, ServerView{ID: s.ID, Name: s.Name, AZ: s.AZ, Local: s.Local, TaskState: s.TaskState, Guest: s.Guest})
		}
	}
	return out
}

func (e *Emulator) adminState(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{
		"volumes": e.Volumes(), "snapshots": e.Snapshots(), "backups": e.Backups(),
		"attachments": e.Attachments(), "servers": e.Servers(),
		"groups": e.GroupIDs(), "group_snapshots": e.GroupSnapshotIDs(),
		"projects": map[string]string{"demo": e.ProjectID("demo"), "second": e.ProjectID("second")},
	})
}

func (e *Emulator) adminAddServer(q *req) {
	var s ServerSpec
	if !decodeBody(q, &s) {
		return
	}
	if s.ID == "" {
		s.ID = newUUID()
	}
	e.AddServer(s)
	writeJSON(q.w, http.StatusCreated, s)
}

func (e *Emulator) adminTaskState(q *req) {
	var in struct {
		TaskState string `json:"task_state"`
	}
	if !decodeBody(q, &in) {
		return
	}
	e.SetServerTaskState(q.p("server_id"), in.TaskState)
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminAddType(q *req) {
	var in struct {
		Name       string            `json:"name"`
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	if !decodeBody(q, &in) {
		return
	}
	if in.Name == "" {
		writeError(q.w, http.StatusBadRequest, "name is required")
		return
	}
	e.AddVolumeType(in.Name, in.ExtraSpecs)
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminVolumeStatus(q *req) {
	var in struct {
		Status string `json:"status"`
	}
	if !decodeBody(q, &in) {
		return
	}
	e.SetVolumeStatus(q.p("volume_id"), in.Status)
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminPassword(q *req) {
	var in struct {
		Password string `json:"password"`
	}
	if !decodeBody(q, &in) {
		return
	}
	e.SetUserPassword(q.p("user"), in.Password)
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminAppCred(q *req) {
	var in struct {
		User, Project, Name, Secret string
	}
	if !decodeBody(q, &in) {
		return
	}
	id := e.AddApplicationCredential(in.User, in.Project, in.Name, in.Secret)
	if id == "" {
		writeError(q.w, http.StatusNotFound, "unknown user or project")
		return
	}
	writeJSON(q.w, http.StatusCreated, map[string]string{"id": id})
}

func (e *Emulator) adminTrust(q *req) {
	var in struct {
		Trustor, Trustee, Project string
		Impersonation             bool
		TTL                       string
	}
	if !decodeBody(q, &in) {
		return
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil {
			writeError(q.w, http.StatusBadRequest, "ttl: "+err.Error())
			return
		}
		ttl = d
	}
	id := e.AddTrust(in.Trustor, in.Trustee, in.Project, in.Impersonation, ttl)
	if id == "" {
		writeError(q.w, http.StatusNotFound, "unknown trustor, trustee or project, or the project is not the trustor's")
		return
	}
	writeJSON(q.w, http.StatusCreated, map[string]string{"id": id})
}

func (e *Emulator) adminExpireTokens(q *req) {
	e.ExpireTokens()
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminQuota(q *req) {
	var in struct {
		Gigabytes, Volumes, Snapshots, Backups *int
	}
	if !decodeBody(q, &in) {
		return
	}
	e.mu.Lock()
	p := e.st.projectByName(q.p("project"), "")
	var cur quota
	if p != nil {
		cur = e.quotaLocked(p.ID)
	}
	e.mu.Unlock()
	if p == nil {
		writeError(q.w, http.StatusNotFound, "unknown project "+q.p("project"))
		return
	}
	pick := func(v *int, old int) int {
		if v != nil {
			return *v
		}
		return old
	}
	e.SetQuota(q.p("project"), pick(in.Gigabytes, cur.Gigabytes), pick(in.Volumes, cur.Volumes), pick(in.Snapshots, cur.Snapshots), pick(in.Backups, cur.Backups))
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) adminCloudConf(q *req) {
	user := q.r.URL.Query().Get("user")
	if user == "" {
		user = "demo"
	}
	q.w.Header().Set("Content-Type", "text/plain")
	_, _ = q.w.Write([]byte(e.CloudConf(q.r.URL.Query().Get("section"), user)))
}
