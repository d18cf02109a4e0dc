package manila

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Share actions are one POST with the action as the body's only key.
// Before 2.7 their names carry an "os-" prefix; a name the microversion
// does not offer is 404, an unknown one 400.
var shareActions = map[string]struct{ min, max string }{
	"extend": {"2.7", ""}, "shrink": {"2.7", ""}, "allow_access": {"2.7", ""}, "deny_access": {"2.7", ""},
	"access_list": {"2.7", "2.44"}, "os-extend": {"2.0", "2.6"}, "os-shrink": {"2.0", "2.6"},
	"os-allow_access": {"2.0", "2.6"}, "os-deny_access": {"2.0", "2.6"}, "os-access_list": {"2.0", "2.6"},
}

func (s *Service) shareAction(q *host.Request) {
	var body map[string]json.RawMessage
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 1 {
		badRequest(q, "Malformed request body")
		return
	}
	action := keys[0]
	span, known := shareActions[action]
	if !known {
		badRequest(q, "There is no such action: "+action)
		return
	}
	if !q.MV.AtLeast(span.min) || (span.max != "" && q.MV.AtLeast(nextMinor(span.max))) {
		notFound(q)
		return
	}
	raw := body[action]
	switch strings.TrimPrefix(action, "os-") {
	case "extend":
		s.resize(q, raw, true)
	case "shrink":
		s.resize(q, raw, false)
	case "allow_access":
		s.allowAccess(q, raw)
	case "deny_access":
		s.denyAccess(q, raw)
	case "access_list":
		s.accessListAction(q)
	}
}

func nextMinor(v string) string {
	m := host.MustMicroversion(v)
	return fmt.Sprintf("%d.%d", m.Major, m.Minor+1)
}

// resize extends or shrinks a share. Shrinking below what its directory
// holds is refused by the "driver": the share returns to available with a
// user message (action 009, detail 018), as Manila does for
// ShareShrinkingPossibleDataLoss.
func (s *Service) resize(q *host.Request, raw json.RawMessage, grow bool) {
	var in struct {
		NewSize any  `json:"new_size"`
		Force   bool `json:"force"`
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
	newSize, ok := sizeOf(in.NewSize)
	if !ok {
		badRequest(q, fmt.Sprintf("New size for %s must be specified as an integer.", map[bool]string{true: "extend", false: "shrink"}[grow]))
		return
	}
	if sh.Status != "available" {
		if grow {
			badRequest(q, fmt.Sprintf("Invalid share: Share %s status must be 'available' to extend, but current status is: %s.", sh.ID, sh.Status))
		} else {
			// Worded as Zed's share API does; not seen on the rig.
			badRequest(q, fmt.Sprintf("Invalid share: Share %s status must in (available, shrinking_possible_data_loss_error) to shrink, but current status is: %s.", sh.ID, sh.Status))
		}
		return
	}
	if grow && newSize <= sh.Size {
		badRequest(q, fmt.Sprintf("Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", sh.Size, newSize))
		return
	}
	if !grow && newSize >= sh.Size {
		badRequest(q, fmt.Sprintf("Invalid input received: New size for shrink must be less than current size and greater than 0 (current: %d, new: %d).", sh.Size, newSize))
		return
	}
	if grow && !s.checkExtendQuotaLocked(q, newSize-sh.Size) {
		return
	}
	op, st := OpShareShrink, "shrinking"
	if grow {
		op, st = OpShareExtend, "extending"
	}
	sh.Status, sh.PreviousSize, sh.UpdatedAt = st, sh.Size, time.Now().UTC()
	s.h.MarkDirty()
	id, requestID := sh.ID, q.RequestID
	failExtend := grow && s.h.Chance(s.h.Faults().ShareExtendErrorRate)
	s.h.Later(op, 1, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		sh := s.st.Shares[id]
		if sh == nil || sh.Status != st {
			return
		}
		if failExtend {
			// The driver failed: extending_error until an admin resets it
			// (the reference plugin's #2619), with message 008/015.
			sh.Status, sh.UpdatedAt = "extending_error", time.Now().UTC()
			s.addMessageLocked(sh.ProjectID, id, requestID, "008", "015")
			return
		}
		sh.Status, sh.UpdatedAt = "available", time.Now().UTC()
		if !grow && usedBytes(filepath.Join(s.sharesRoot(), id)) > int64(newSize)<<30 {
			s.addMessageLocked(sh.ProjectID, id, requestID, "009", "018")
		} else {
			sh.Size = newSize
		}
		s.h.MarkDirty()
	})
	q.W.WriteHeader(http.StatusAccepted)
}
