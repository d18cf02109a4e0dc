package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

// keystoneTime is how Keystone writes expires_at in trusts and credentials.
const keystoneTime = "2006-01-02T15:04:05.000000Z"

// Keystone trusts (OS-TRUST) and application credential deletion: the two
// ways an operator's credentials change under a running plugin besides a
// password change.

type trust struct {
	ID, TrustorUserID, TrusteeUserID, ProjectID string
	Impersonation                               bool
	ExpiresAt                                   *time.Time
}

func (e *Emulator) trustRoutes(add addFunc) {
	add("POST", svcIdentity, "/identity/v3/users/{user_id}/application_credentials", true, (*Emulator).createAppCredential)
	add("POST", svcIdentity, "/identity/v3/OS-TRUST/trusts", true, (*Emulator).createTrust)
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

// DeleteTrust removes a trust; the tokens scoped to it stop working, as in
// Keystone.
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
	e.markDirty()
	return true
}

// DeleteApplicationCredential removes an application credential; the tokens
// issued with it stop working, as in Keystone.
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
		identityError(q, http.StatusNotFound, "Not Found", "Could not find Application Credential: "+q.p("credential_id")+".")
		return
	}
	e.deleteAppCredentialLocked(c.ID)
	q.w.WriteHeader(http.StatusNoContent)
}

// deleteTrust serves DELETE /v3/OS-TRUST/trusts/{trust_id}: the trustor or
// the trustee ends a trust (Zed's policy lets either).
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
	if caller.UserID != tr.TrustorUserID && caller.UserID != tr.TrusteeUserID {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:delete_trust.")
		return
	}
	e.deleteTrustLocked(tr.ID)
	q.w.WriteHeader(http.StatusNoContent)
}

// trustScopeLocked resolves a scope of {"OS-TRUST:trust": {"id": ...}} for
// the authenticated user u. It returns ok=false when the scope names no
// trust; otherwise the trust, or an answer already written: 401 for an
// unknown or expired trust and 403 when u is not its trustee, as Zed's
// Keystone answers (tests/e2e/openstack/diff, Keystone).
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
		unauthorized(q)
		return nil, true
	}
	if u.ID != tr.TrusteeUserID {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action.")
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

// createAppCredential serves POST /v3/users/{user_id}/application_credentials:
// a user makes a credential for the project of the token they hold. The
// secret is generated when not given, and shown only in this answer.
func (e *Emulator) createAppCredential(q *req) {
	var in struct {
		Cred *struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
		} `json:"application_credential"`
	}
	if !decodeBody(q, &in) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	caller := e.tokenFromHeaderLocked(q, "X-Auth-Token")
	switch {
	case caller == nil:
		unauthorized(q)
		return
	case in.Cred == nil || in.Cred.Name == "":
		identityError(q, http.StatusBadRequest, "Bad Request", "Invalid input for field 'name': None is not of type 'string'")
		return
	case caller.UserID != q.p("user_id"):
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:create_application_credential.")
		return
	case caller.AppCredID != "":
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional application credentials..")
		return
	}
	for _, c := range e.st.AppCredentials {
		if c.UserID == caller.UserID && c.Name == in.Cred.Name {
			identityError(q, http.StatusConflict, "Conflict", "Conflict occurred attempting to store application_credential - Duplicate entry found with name "+c.Name+".")
			return
		}
	}
	secret := in.Cred.Secret
	if secret == "" {
		secret = newHexID() + newHexID()
	}
	c := &appCredential{ID: newHexID(), Name: in.Cred.Name, UserID: caller.UserID, ProjectID: caller.ProjectID, Secret: secret}
	e.st.AppCredentials[c.ID] = c
	e.markDirty()
	writeJSON(q.w, http.StatusCreated, map[string]any{"application_credential": map[string]any{
		"id": c.ID, "name": c.Name, "secret": secret, "user_id": c.UserID, "project_id": c.ProjectID,
		"description": nil, "expires_at": nil, "unrestricted": false, "access_rules": []any{},
		"roles": []any{map[string]any{"id": "c4b2e1d0a9f84e7d8c6b5a4f3e2d1c0b", "name": "member", "domain_id": nil}},
		"links": map[string]any{"self": e.baseURLFor(q.r) + "/identity/v3/users/" + c.UserID + "/application_credentials/" + c.ID},
	}})
}

// createTrust serves POST /v3/OS-TRUST/trusts: the trustor delegates their
// role on a project to the trustee.
func (e *Emulator) createTrust(q *req) {
	var in struct {
		Trust *struct {
			TrustorUserID string     `json:"trustor_user_id"`
			TrusteeUserID string     `json:"trustee_user_id"`
			ProjectID     string     `json:"project_id"`
			Impersonation bool       `json:"impersonation"`
			ExpiresAt     *time.Time `json:"expires_at"`
		} `json:"trust"`
	}
	if !decodeBody(q, &in) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	caller := e.tokenFromHeaderLocked(q, "X-Auth-Token")
	if caller == nil {
		unauthorized(q)
		return
	}
	tin := in.Trust
	if tin == nil || tin.TrustorUserID == "" || tin.TrusteeUserID == "" {
		identityError(q, http.StatusBadRequest, "Bad Request", "Invalid input for field 'trust': 'trustor_user_id' is a required property")
		return
	}
	if caller.UserID != tin.TrustorUserID {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:create_trust.")
		return
	}
	if e.st.Users[tin.TrusteeUserID] == nil {
		identityError(q, http.StatusNotFound, "Not Found", "Could not find user: "+tin.TrusteeUserID+".")
		return
	}
	// Every user's only role is on its own default project.
	if tor := e.st.Users[tin.TrustorUserID]; tin.ProjectID != tor.DefaultProjectID {
		identityError(q, http.StatusForbidden, "Forbidden", "You are not authorized to perform the requested action: identity:create_trust.")
		return
	}
	tr := &trust{ID: newHexID(), TrustorUserID: tin.TrustorUserID, TrusteeUserID: tin.TrusteeUserID, ProjectID: tin.ProjectID,
		Impersonation: tin.Impersonation, ExpiresAt: tin.ExpiresAt}
	e.st.Trusts[tr.ID] = tr
	e.markDirty()
	var expires any
	if tr.ExpiresAt != nil {
		expires = tr.ExpiresAt.UTC().Format(keystoneTime)
	}
	writeJSON(q.w, http.StatusCreated, map[string]any{"trust": map[string]any{
		"id": tr.ID, "trustor_user_id": tr.TrustorUserID, "trustee_user_id": tr.TrusteeUserID, "project_id": tr.ProjectID,
		"impersonation": tr.Impersonation, "expires_at": expires, "remaining_uses": nil, "redelegation_count": 0, "redelegated_trust_id": nil,
		"roles":       []any{map[string]any{"id": "c4b2e1d0a9f84e7d8c6b5a4f3e2d1c0b", "name": "member", "domain_id": nil}},
		"roles_links": map[string]any{"self": nil, "previous": nil, "next": nil},
		"links":       map[string]any{"self": e.baseURLFor(q.r) + "/identity/v3/OS-TRUST/trusts/" + tr.ID},
	}})
}

// tokenGoneLocked says why a token no longer works although it has not
// expired: the application credential or the trust it came from was
// deleted. Keystone keeps such tokens and refuses them when validated.
func (e *Emulator) tokenGoneLocked(t *token) string {
	if t.AppCredID != "" && e.st.AppCredentials[t.AppCredID] == nil {
		return "Could not find Application Credential: " + t.AppCredID + "."
	}
	if t.TrustID != "" && e.st.Trusts[t.TrustID] == nil {
		return "Could not find trust: " + t.TrustID + "."
	}
	return ""
}
