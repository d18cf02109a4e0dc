package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

// Keystone trusts (OS-TRUST) and application credential deletion: the two
// ways an operator's credentials change under a running plugin besides a
// password change.

type trust struct {
	ID, TrustorUserID, TrusteeUserID, ProjectID string
	Impersonation                               bool
	ExpiresAt                                   *time.Time
}

func (e *Emulator) trustRoutes(add addFunc) {
	add("DELETE", svcIdentity, "/identity/v3/users/{user_id}/application_credentials/{credential_id}", true, (*Emulator).deleteAppCredential)
	add("DELETE", svcIdentity, "/identity/v3/OS-TRUST/trusts/{trust_id}", true, (*Emulator).deleteTrust)
}

// UserID returns the id of a built-in user ("demo", "second"), or "".
func (e *Emulator) UserID(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.st.userByName(name, defaultDomainID); u != nil {
		return u.ID
	}
	return ""
}

// AddTrust lets trustee act in trustor's project (which must be trustor's
// own) and returns the trust id, or "" for an unknown user or project. A
// zero ttl never expires.
func (e *Emulator) AddTrust(trustor, trustee, projectName string, impersonation bool, ttl time.Duration) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	tor := e.st.userByName(trustor, defaultDomainID)
	tee := e.st.userByName(trustee, defaultDomainID)
	p := e.st.projectByName(projectName, defaultDomainID)
	if tor == nil || tee == nil || p == nil || p.ID != tor.DefaultProjectID {
		return ""
	}
	tr := &trust{ID: newHexID(), TrustorUserID: tor.ID, TrusteeUserID: tee.ID, ProjectID: p.ID, Impersonation: impersonation}
	if ttl > 0 {
		exp := time.Now().Add(ttl).UTC()
		tr.ExpiresAt = &exp
	}
	e.st.Trusts[tr.ID] = tr
	e.markDirty()
	return tr.ID
}

// DeleteTrust removes a trust and revokes the tokens scoped to it, as
// Keystone does.
func (e *Emulator) DeleteTrust(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deleteTrustLocked(id)
}

func (e *Emulator) deleteTrustLocked(id string) bool {
	if _, ok := e.st.Trusts[id]; !ok {
		return false
	}
	delete(e.st.Trusts, id)
	for tid, t := range e.st.Tokens {
		if t.TrustID == id {
			delete(e.st.Tokens, tid)
		}
	}
	e.markDirty()
	return true
}

// DeleteApplicationCredential removes an application credential and
// revokes the tokens issued with it, as Keystone does.
func (e *Emulator) DeleteApplicationCredential(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deleteAppCredentialLocked(id)
}

func (e *Emulator) deleteAppCredentialLocked(id string) bool {
	if _, ok := e.st.AppCredentials[id]; !ok {
		return false
	}
	delete(e.st.AppCredentials, id)
	for tid, t := range e.st.Tokens {
		if t.AppCredID == id {
			delete(e.st.Tokens, tid)
		}
	}
	e.markDirty()
	return true
}

// deleteAppCredential serves DELETE /v3/users/{user_id}/application_credentials/{id}:
// a user deletes their own credential.
func (e *Emulator) deleteAppCredential(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	caller := e.tokenFromHeaderLocked(q, "X-Auth-Token")
	if caller == nil {
		unauthorized(q)
		return
	}
	if caller.UserID != q.p("user_id") {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:delete_application_credential.")
		return
	}
	c := e.st.AppCredentials[q.p("credential_id")]
	if c == nil || c.UserID != caller.UserID {
		identityError(q, http.StatusNotFound, "Not Found", "Could not find application credential: "+q.p("credential_id")+".")
		return
	}
	e.deleteAppCredentialLocked(c.ID)
	q.w.WriteHeader(http.StatusNoContent)
}

// deleteTrust serves DELETE /v3/OS-TRUST/trusts/{trust_id}: the trustor
// revokes a trust.
func (e *Emulator) deleteTrust(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	caller := e.tokenFromHeaderLocked(q, "X-Auth-Token")
	if caller == nil {
		unauthorized(q)
		return
	}
	tr := e.st.Trusts[q.p("trust_id")]
	if tr == nil {
		identityError(q, http.StatusNotFound, "Not Found", "Could not find trust: "+q.p("trust_id")+".")
		return
	}
	if caller.UserID != tr.TrustorUserID {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:delete_trust.")
		return
	}
	e.deleteTrustLocked(tr.ID)
	q.w.WriteHeader(http.StatusNoContent)
}

// trustScopeLocked resolves a scope of {"OS-TRUST:trust": {"id": ...}} for
// the authenticated user u. It returns ok=false when the scope names no
// trust; otherwise the trust, or an answer already written (404 for an
// unknown or expired trust, 403 when u is not its trustee).
func (e *Emulator) trustScopeLocked(q *req, raw json.RawMessage, u *user) (tr *trust, ok bool) {
	var scope struct {
		Trust *struct {
			ID string `json:"id"`
		} `json:"OS-TRUST:trust"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &scope) != nil || scope.Trust == nil {
		return nil, false
	}
	tr = e.st.Trusts[scope.Trust.ID]
	if tr == nil || (tr.ExpiresAt != nil && time.Now().After(*tr.ExpiresAt)) {
		identityError(q, http.StatusNotFound, "Not Found", "Could not find trust: "+scope.Trust.ID+".")
		return nil, true
	}
	if u.ID != tr.TrusteeUserID {
		identityError(q, http.StatusForbidden, "Forbidden", "User is not a trustee.")
		return nil, true
	}
	return tr, true
}

// trustBody is the token's "OS-TRUST:trust" member.
func trustBody(tr *trust) map[string]any {
	return map[string]any{
		"id": tr.ID, "impersonation": tr.Impersonation,
		"trustee_user": map[string]any{"id": tr.TrusteeUserID},
		"trustor_user": map[string]any{"id": tr.TrustorUserID},
	}
}
