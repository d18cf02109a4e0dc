package manila

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Access rules move queued_to_apply -> applying -> active (the rig: about
// 1 s in all); a cephx rule's access_key appears about 0.6 s after
// allow_access, before the rule is active. A rule the backend cannot apply
// (ip on native CephFS, cephx on NFS-Ganesha) ends in error with Manila's
// user message (action 010, detail 021), and the share's
// access_rules_status turns error. Deny moves queued_to_deny -> denying ->
// gone.

func (s *Service) accessRoutes(add func(string, string, host.Handler)) {
	add("GET", "/share-access-rules", s.listAccessRules)
	add("GET", "/share-access-rules/{access_id}", s.getAccessRule)
	add("PUT", "/share-access-rules/{access_id}", s.updateAccessRule)
	add("PUT", "/share-access-rules/{access_id}/metadata", s.accessMetadata(metaUpdate))
	add("DELETE", "/share-access-rules/{access_id}/metadata/{key}", s.accessMetadata(metaDeleteKey))
}

// accessRulesStatusLocked is the share's access_rules_status: error when a
// rule failed, syncing while one is in transition, else active.
func (s *Service) accessRulesStatusLocked(shareID string) string {
	status := "active"
	for _, r := range s.st.rulesOf(shareID) {
		switch r.State {
		case "error":
			return "error"
		case "queued_to_apply", "applying", "queued_to_deny", "denying":
			status = "syncing"
		}
	}
	return status
}

type allowBody struct {
	AccessType  string            `json:"access_type"`
	AccessTo    string            `json:"access_to"`
	AccessLevel string            `json:"access_level"`
	Metadata    map[string]string `json:"metadata"`
}

func validateAccess(in allowBody) string {
	switch in.AccessType {
	case "ip":
		if strings.Contains(in.AccessTo, "/") {
			if _, _, err := net.ParseCIDR(in.AccessTo); err != nil {
				return fmt.Sprintf("'%s' does not appear to be an IPv4 or IPv6 network", in.AccessTo)
			}
		} else if net.ParseIP(in.AccessTo) == nil {
			return fmt.Sprintf("'%s' does not appear to be an IPv4 or IPv6 network", in.AccessTo)
		}
	case "cephx":
		if strings.Contains(in.AccessTo, ".") {
			return "Ceph IDs may not contain periods."
		}
		if in.AccessTo == "" || len(in.AccessTo) > 255 {
			return "Ceph IDs must be 1 to 255 characters long."
		}
	case "user", "cert":
		if in.AccessTo == "" {
			return "Invalid access rule: Invalid " + in.AccessType + " access."
		}
	default:
		return "Only 'ip', 'user', 'cert' or 'cephx' access types are supported."
	}
	if in.AccessLevel != "rw" && in.AccessLevel != "ro" {
		return "Invalid access rule: Invalid share access level: " + in.AccessLevel + "."
	}
	return ""
}

func (s *Service) allowAccess(q *host.Request, raw json.RawMessage) {
	var in allowBody
	if err := json.Unmarshal(raw, &in); err != nil {
		badRequest(q, "Malformed request body")
		return
	}
	if in.AccessLevel == "" {
		in.AccessLevel = "rw"
	}
	if msg := validateAccess(in); msg != "" {
		badRequest(q, msg)
		return
	}
	if in.AccessType == "cephx" && !q.MV.AtLeast("2.13") {
		badRequest(q, "Only 'ip', 'user' or 'cert' access types are supported.")
		return
	}
	if !q.MV.AtLeast("2.45") {
		in.Metadata = nil // ignored before 2.45 (checked on Zed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	if sh.Status != "available" {
		badRequest(q, "New access rules cannot be applied while the share or any of its replicas or migration copies lacks a valid host or is in an invalid state.")
		return
	}
	for _, r := range s.st.rulesOf(sh.ID) {
		if r.Type == in.AccessType && r.To == in.AccessTo {
			badRequest(q, fmt.Sprintf("Share access %s:%s exists.", in.AccessType, in.AccessTo))
			return
		}
	}
	now := time.Now().UTC()
	r := &accessRule{ID: host.NewUUID(), ShareID: sh.ID, ProjectID: sh.ProjectID, Type: in.AccessType, To: in.AccessTo,
		Level: in.AccessLevel, State: "queued_to_apply", Metadata: copyMap(in.Metadata), CreatedAt: now}
	s.st.Access[r.ID] = r
	s.h.MarkDirty()
	resp := accessBody(q.MV, r, false)
	if s.h.Faults().StuckAccessRules {
		r.Held = true
	} else {
		s.applyRuleLater(r.ID)
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"access": resp})
}

// applyRuleLater runs a queued rule through applying to active (or error),
// with the cephx key on its own, earlier timer. Callers hold s.mu.
func (s *Service) applyRuleLater(id string) {
	fail := s.h.Chance(s.h.Faults().AccessRuleErrorRate)
	s.h.Later(OpAccessAllow, 0.25, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.st.Access[id]; r != nil && r.State == "queued_to_apply" && !r.Held {
			r.State, r.UpdatedAt = "applying", time.Now().UTC()
			s.h.MarkDirty()
		}
	})
	s.h.Later(OpAccessKey, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.st.Access[id]; r != nil && !fail && r.Type == "cephx" && r.Key == "" && !r.Held && s.ruleFits(r) &&
			(r.State == "applying" || r.State == "queued_to_apply") {
			r.Key = newCephxKey()
			s.h.MarkDirty()
		}
	})
	s.h.Later(OpAccessAllow, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.st.Access[id]
		if r == nil || r.Held || (r.State != "applying" && r.State != "queued_to_apply") {
			return
		}
		if fail || !s.ruleFits(r) {
			r.State, r.UpdatedAt = "error", time.Now().UTC()
			s.addMessageLocked(r.ProjectID, r.ShareID, "", "010", "021")
			s.h.MarkDirty()
			return
		}
		s.activateRuleLocked(r)
	})
}

// ruleFits reports whether the share's backend can apply the rule: the
// CephFS native helper takes cephx only, the NFS-Ganesha one ip only.
func (s *Service) ruleFits(r *accessRule) bool {
	sh := s.st.Shares[r.ShareID]
	if sh == nil {
		return false
	}
	if sh.Proto == "CEPHFS" {
		return r.Type == "cephx"
	}
	return r.Type == "ip"
}

func (s *Service) activateRuleLocked(r *accessRule) {
	if r.Type == "cephx" && r.Key == "" {
		r.Key = newCephxKey()
	}
	r.State, r.UpdatedAt = "active", time.Now().UTC()
	s.h.MarkDirty()
}

// newCephxKey makes a secret shaped like a cephx key (base64 of 28 bytes,
// "AQ..."-like, 40 characters).
func newCephxKey() string {
	b := make([]byte, 28)
	_, _ = rand.Read(b)
	b[0], b[1] = 0x01, 0x00
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Service) denyAccess(q *host.Request, raw json.RawMessage) {
	var in struct {
		AccessID string `json:"access_id"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		badRequest(q, "Malformed request body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	r := s.st.Access[in.AccessID]
	if r == nil || r.ShareID != sh.ID {
		host.WriteFault(q.W, http.StatusNotFound, "Resource could not be found.")
		return
	}
	if r.State == "queued_to_deny" || r.State == "denying" {
		q.W.WriteHeader(http.StatusAccepted)
		return
	}
	r.State, r.Held, r.UpdatedAt = "queued_to_deny", false, time.Now().UTC()
	s.h.MarkDirty()
	id := r.ID
	s.h.Later(OpAccessDeny, 0.3, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.st.Access[id]; r != nil && r.State == "queued_to_deny" {
			r.State, r.UpdatedAt = "denying", time.Now().UTC()
			s.h.MarkDirty()
		}
	})
	s.h.Later(OpAccessDeny, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.st.Access[id]; r != nil && (r.State == "denying" || r.State == "queued_to_deny") {
			delete(s.st.Access, id)
			s.h.MarkDirty()
		}
	})
	q.W.WriteHeader(http.StatusAccepted)
}

func (s *Service) accessListAction(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, q.P("share_id"))
	if sh == nil {
		return
	}
	out := []any{}
	for _, r := range s.st.rulesOf(sh.ID) {
		b := accessBody(q.MV, r, true)
		delete(b, "metadata")
		out = append(out, b)
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"access_list": out})
}

// visibleRuleLocked returns the caller's rule or answers Manila's 404.
func (s *Service) visibleRuleLocked(q *host.Request, id string) *accessRule {
	if !q.MV.AtLeast("2.45") {
		notFound(q)
		return nil
	}
	return ownedLocked(q, s.st.Access, id, fmt.Sprintf("Share access rule %s not found.", id))
}

func (s *Service) getAccessRule(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.visibleRuleLocked(q, q.P("access_id")); r != nil {
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"access": accessBody(q.MV, r, false)})
	}
}

func (s *Service) listAccessRules(q *host.Request) {
	if !q.MV.AtLeast("2.45") {
		notFound(q)
		return
	}
	lq, ok := parseList(q)
	if !ok {
		return
	}
	shareID := lq.vals.Get("share_id")
	if shareID == "" {
		badRequest(q, "The field 'share_id' has to be specified.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.visibleShareLocked(q, shareID)
	if sh == nil {
		return
	}
	out := []any{}
	for _, r := range s.st.rulesOf(sh.ID) {
		if lq.dict("metadata", r.Metadata) && lq.text(q, "access_type", r.Type) && lq.text(q, "access_to", r.To) {
			out = append(out, accessBody(q.MV, r, true))
		}
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"access_list": out})
}

// updateAccessRule changes access_level (2.88 upstream; Zed has no such
// call, so it is 404 here like on the rig below 2.88).
func (s *Service) updateAccessRule(q *host.Request) { notFound(q) }

func (s *Service) accessMetadata(op metaOp) host.Handler {
	return func(q *host.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.visibleRuleLocked(q, q.P("access_id"))
		if r == nil {
			return
		}
		if metadataCall(q, op, &r.Metadata) {
			s.h.MarkDirty()
		}
	}
}

// HoldAccessRule keeps a rule that is not active yet in queued_to_apply,
// without its key (true), or lets it go on (false): the race of the
// reference plugin's #3000, for one rule.
func (s *Service) HoldAccessRule(accessID string, hold bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.st.Access[accessID]
	if r == nil {
		return false
	}
	if hold {
		if r.State == "queued_to_apply" || r.State == "applying" {
			r.State, r.Held, r.Key = "queued_to_apply", true, ""
		}
		return true
	}
	if r.Held {
		r.Held = false
		s.applyRuleLater(r.ID)
	}
	return true
}

// AccessRules lists a share's rules (type, to, level, state) for tests
// that check who can reach a share.
func (s *Service) AccessRules(shareID string) []AccessRuleView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AccessRuleView
	for _, r := range s.st.rulesOf(shareID) {
		out = append(out, AccessRuleView{ID: r.ID, Type: r.Type, To: r.To, Level: r.Level, State: r.State})
	}
	return out
}

// AccessRuleView is a rule as AccessRules reports it (no key).
type AccessRuleView struct {
	ID, Type, To, Level, State string
}
