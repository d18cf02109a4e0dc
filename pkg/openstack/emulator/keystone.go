package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

func (e *Emulator) identityRoutes(add addFunc) {
	add("GET", svcIdentity, "/identity", true, (*Emulator).identityVersions)
	add("GET", svcIdentity, "/identity/v3", true, (*Emulator).identityV3Version)
	add("POST", svcIdentity, "/identity/v3/auth/tokens", true, (*Emulator).createToken)
	add("GET", svcIdentity, "/identity/v3/auth/tokens", true, (*Emulator).validateToken)
	add("DELETE", svcIdentity, "/identity/v3/auth/tokens", true, (*Emulator).revokeToken)
	add("GET", svcIdentity, "/identity/v3/auth/catalog", true, (*Emulator).getCatalog)
	e.trustRoutes(add)
}

func (e *Emulator) v3VersionDoc(base string) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": base + "/identity/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (e *Emulator) identityVersions(q *req) {
	writeJSON(q.w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{e.v3VersionDoc(e.baseURLFor(q.r))}}})
}

func (e *Emulator) identityV3Version(q *req) {
	writeJSON(q.w, http.StatusOK, map[string]any{"version": e.v3VersionDoc(e.baseURLFor(q.r))})
}

type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User userRef `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			ApplicationCredential *struct {
				ID     string   `json:"id"`
				Name   string   `json:"name"`
				Secret string   `json:"secret"`
				User   *userRef `json:"user"`
			} `json:"application_credential"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type userRef struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Password string     `json:"password"`
	Domain   *domainRef `json:"domain"`
}

type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func unauthorized(q *req) {
	writeJSON(q.w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
		"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
}

func identityError(q *req, code int, title, msg string) {
	writeJSON(q.w, code, map[string]any{"error": map[string]any{"code": code, "title": title, "message": msg}})
}

// resolveDomain returns the domain id named by ref, or "" if unknown.
func (e *Emulator) resolveDomainLocked(ref *domainRef) string {
	if ref == nil {
		return ""
	}
	if ref.ID != "" {
		if _, ok := e.st.Domains[ref.ID]; ok {
			return ref.ID
		}
		return ""
	}
	if d := e.st.domainByName(ref.Name); d != nil {
		return d.ID
	}
	return ""
}

func (e *Emulator) resolveUserLocked(ref userRef) *user {
	if ref.ID != "" {
		return e.st.Users[ref.ID]
	}
	did := e.resolveDomainLocked(ref.Domain)
	if did == "" {
		return nil
	}
	return e.st.userByName(ref.Name, did)
}

func (e *Emulator) createToken(q *req) {
	var ar authRequest
	if !decodeBody(q, &ar) {
		return
	}
	id := ar.Auth.Identity
	e.mu.Lock()
	defer e.mu.Unlock()
	var u *user
	var methods []string
	appProject, appCredID := "", ""
	var inherited *token
	switch {
	case id.ApplicationCredential != nil:
		ac := id.ApplicationCredential
		var cred *appCredential
		if ac.ID != "" {
			cred = e.st.AppCredentials[ac.ID]
		} else if ac.User != nil {
			if owner := e.resolveUserLocked(*ac.User); owner != nil {
				for _, c := range e.st.AppCredentials {
					if c.Name == ac.Name && c.UserID == owner.ID {
						cred = c
					}
				}
			}
		}
		if cred == nil || cred.Secret != ac.Secret {
			unauthorized(q)
			return
		}
		if len(ar.Auth.Scope) > 0 && string(ar.Auth.Scope) != "null" {
			identityError(q, http.StatusUnauthorized, "Unauthorized", "Application credentials cannot request a scope.")
			return
		}
		u = e.st.Users[cred.UserID]
		methods = []string{"application_credential"}
		appProject, appCredID = cred.ProjectID, cred.ID
	case id.Password != nil:
		ref := id.Password.User
		if ref.ID == "" && ref.Domain == nil {
			identityError(q, http.StatusBadRequest, "Bad Request", "Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect.")
			return
		}
		u = e.resolveUserLocked(ref)
		if u == nil || u.Password != ref.Password {
			unauthorized(q)
			return
		}
		methods = []string{"password"}
	case id.Token != nil:
		t := e.st.Tokens[id.Token.ID]
		if t == nil || time.Now().After(t.ExpiresAt) || e.tokenGoneLocked(t) != "" {
			unauthorized(q)
			return
		}
		inherited = t
		u = e.st.Users[t.UserID]
		methods = []string{"token"}
	default:
		identityError(q, http.StatusBadRequest, "Bad Request", "Expecting to find identity in auth.")
		return
	}
	if u == nil {
		unauthorized(q)
		return
	}

	var tr *trust
	if appProject == "" {
		t, isTrust := e.trustScopeLocked(q, ar.Auth.Scope, u)
		if isTrust && t == nil {
			return // answered
		}
		tr = t
	}

	projectID := appProject
	userID := u.ID
	switch {
	case tr != nil:
		projectID = tr.ProjectID
		if tr.Impersonation {
			userID = tr.TrustorUserID
		}
	case appProject == "":
		var scope struct {
			Project *struct {
				ID     string     `json:"id"`
				Name   string     `json:"name"`
				Domain *domainRef `json:"domain"`
			} `json:"project"`
			Domain *domainRef `json:"domain"`
		}
		if len(ar.Auth.Scope) > 0 {
			if err := json.Unmarshal(ar.Auth.Scope, &scope); err != nil {
				identityError(q, http.StatusBadRequest, "Bad Request", "Invalid scope.")
				return
			}
		}
		switch {
		case scope.Project != nil:
			var p *project
			if scope.Project.ID != "" {
				p = e.st.Projects[scope.Project.ID]
			} else if did := e.resolveDomainLocked(scope.Project.Domain); did != "" {
				p = e.st.projectByName(scope.Project.Name, did)
			}
			// Every user has a role only on its own default project.
			if p == nil || p.ID != u.DefaultProjectID {
				identityError(q, http.StatusUnauthorized, "Unauthorized", "The request you have made requires authentication.")
				return
			}
			projectID = p.ID
		case scope.Domain != nil:
			identityError(q, http.StatusUnauthorized, "Unauthorized", "User has no access to domain.")
			return
		case inherited != nil:
			projectID = inherited.ProjectID
		default:
			projectID = u.DefaultProjectID
		}
	}

	now := time.Now().UTC()
	t := &token{ID: "gAAAAA" + newHexID() + newHexID(), UserID: userID, ProjectID: projectID, Methods: methods,
		AppCredID: appCredID, IssuedAt: now, ExpiresAt: now.Add(e.opts.TokenTTL), AuditID: newHexID()[:22]}
	if tr != nil {
		t.TrustID = tr.ID
		if tr.ExpiresAt != nil && tr.ExpiresAt.Before(t.ExpiresAt) {
			t.ExpiresAt = *tr.ExpiresAt
		}
	}
	if inherited != nil {
		t.ExpiresAt = inherited.ExpiresAt
	}
	e.st.Tokens[t.ID] = t
	e.pruneTokensLocked(now)
	e.markDirty()
	q.w.Header().Set("X-Subject-Token", t.ID)
	writeJSON(q.w, http.StatusCreated, map[string]any{"token": e.tokenBodyLocked(t, q)})
}

func (e *Emulator) pruneTokensLocked(now time.Time) {
	for id, t := range e.st.Tokens {
		if now.After(t.ExpiresAt.Add(time.Hour)) {
			delete(e.st.Tokens, id)
		}
	}
}

func (e *Emulator) tokenBodyLocked(t *token, q *req) map[string]any {
	u := e.st.Users[t.UserID]
	dom := e.st.Domains[u.DomainID]
	body := map[string]any{
		"methods":    t.Methods,
		"user":       map[string]any{"id": u.ID, "name": u.Name, "domain": map[string]any{"id": dom.ID, "name": dom.Name}, "password_expires_at": nil},
		"audit_ids":  []string{t.AuditID},
		"issued_at":  t.IssuedAt.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": t.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
	}
	if p := e.st.Projects[t.ProjectID]; p != nil {
		pd := e.st.Domains[p.DomainID]
		body["project"] = map[string]any{"id": p.ID, "name": p.Name, "domain": map[string]any{"id": pd.ID, "name": pd.Name}}
		body["is_domain"] = false
		body["roles"] = []any{map[string]any{"id": "c4b2e1d0a9f84e7d8c6b5a4f3e2d1c0b", "name": "member"}, map[string]any{"id": "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d", "name": "reader"}}
		body["catalog"] = e.catalog(e.baseURLFor(q.r), p.ID)
	}
	if tr := e.st.Trusts[t.TrustID]; tr != nil {
		body["OS-TRUST:trust"] = trustBody(tr)
	}
	if t.AppCredID != "" {
		if c := e.st.AppCredentials[t.AppCredID]; c != nil {
			body["application_credential"] = map[string]any{"id": c.ID, "name": c.Name, "restricted": true}
		}
	}
	return body
}

func (e *Emulator) catalog(base, projectID string) []any {
	region := e.opts.Region
	eps := func(url string) []any {
		var out []any
		for _, iface := range []string{"public", "internal", "admin"} {
			out = append(out, map[string]any{"id": newHexID(), "interface": iface, "region": region, "region_id": region, "url": url})
		}
		return out
	}
	volURL := base + "/volume/v3/" + projectID
	services := e.serviceCatalog(base, projectID, eps)
	return append([]any{
		map[string]any{"id": "0f6c6a1a3f3b4f0e8f9a1b2c3d4e5f60", "type": "identity", "name": "keystone", "endpoints": eps(base + "/identity")},
		map[string]any{"id": "1f6c6a1a3f3b4f0e8f9a1b2c3d4e5f61", "type": "block-storage", "name": "cinder", "endpoints": eps(volURL)},
		map[string]any{"id": "2f6c6a1a3f3b4f0e8f9a1b2c3d4e5f62", "type": "volumev3", "name": "cinderv3", "endpoints": eps(volURL)},
		map[string]any{"id": "3f6c6a1a3f3b4f0e8f9a1b2c3d4e5f63", "type": "compute", "name": "nova", "endpoints": eps(base + "/compute/v2.1")},
	}, services...)
}

// tokenFromHeader validates X-Auth-Token for identity calls made with a token.
func (e *Emulator) tokenFromHeaderLocked(q *req, header string) *token {
	t := e.st.Tokens[q.r.Header.Get(header)]
	if t == nil || time.Now().After(t.ExpiresAt) || e.tokenGoneLocked(t) != "" {
		return nil
	}
	return t
}

// subjectTokenLocked returns the token X-Subject-Token names, once the
// caller's X-Auth-Token is valid; else it answers 401 or 404.
func (e *Emulator) subjectTokenLocked(q *req) *token {
	if e.tokenFromHeaderLocked(q, "X-Auth-Token") == nil {
		unauthorized(q)
		return nil
	}
	if t := e.st.Tokens[q.r.Header.Get("X-Subject-Token")]; t != nil {
		if why := e.tokenGoneLocked(t); why != "" {
			identityError(q, http.StatusNotFound, "Not Found", why)
			return nil
		}
	}
	subject := e.tokenFromHeaderLocked(q, "X-Subject-Token")
	if subject == nil {
		identityError(q, http.StatusNotFound, "Not Found", "Could not find token.")
	}
	return subject
}

func (e *Emulator) validateToken(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	subject := e.subjectTokenLocked(q)
	if subject == nil {
		return
	}
	q.w.Header().Set("X-Subject-Token", subject.ID)
	writeJSON(q.w, http.StatusOK, map[string]any{"token": e.tokenBodyLocked(subject, q)})
}

func (e *Emulator) revokeToken(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	subject := e.subjectTokenLocked(q)
	if subject == nil {
		return
	}
	delete(e.st.Tokens, subject.ID)
	e.markDirty()
	q.w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) getCatalog(q *req) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokenFromHeaderLocked(q, "X-Auth-Token")
	if t == nil {
		unauthorized(q)
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"catalog": e.catalog(e.baseURLFor(q.r), t.ProjectID)})
}

// ExpireTokens makes every issued token expired, forcing re-authentication.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, t := range e.st.Tokens {
		t.ExpiresAt = past
	}
}
