package manila

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// User messages (/messages, 2.37): Manila's action and detail ids with
// their texts (manila/message/message_field.py, Zed; 001/008 and 010/021
// checked on the rig).
var messageActions = map[string]string{
	"001": "allocate host", "002": "create", "003": "delete access rules", "005": "update", "007": "delete",
	"008": "extend", "009": "shrink", "010": "update access rules",
}

var messageDetails = map[string]string{
	"001": "An unknown error occurred.",
	"002": "No storage could be allocated for this share request. Trying again with a different size or share type may succeed.",
	"003": "Driver does not expect share-network to be provided with current configuration.",
	"008": "No storage could be allocated for this share request, Capabilities filter didn't succeed.",
	"015": "Share Driver failed to extend share, The share status has been set to extending_error. This action cannot be re-attempted until the status has been rectified. Contact your administrator to determine the cause of this failure.",
	"018": "Share Driver refused to shrink the share. The size to be shrunk is smaller than the current used space. The share status has been set to available. Please select a size greater than the current used space.",
	"021": "Failed to grant access to client. The access level or type may be unsupported. You may try again with a different access level or access type.",
}

// messageTTL is Manila's message_ttl default (30 days).
const messageTTL = 30 * 24 * time.Hour

// addMessageLocked records a user message about a share (the only
// resource type the emulator reports on).
func (s *Service) addMessageLocked(projectID, resourceID, requestID, action, detail string) {
	now := time.Now().UTC()
	if requestID == "" {
		requestID = "req-" + host.NewUUID()
	}
	m := &message{ID: host.NewUUID(), ProjectID: projectID, ActionID: action, DetailID: detail,
		UserMessage:  messageActions[action] + ": " + messageDetails[detail],
		ResourceType: "SHARE", ResourceID: resourceID, RequestID: requestID, CreatedAt: now,
		ExpiresAt: now.Add(messageTTL).Truncate(time.Second)}
	s.st.Messages[m.ID] = m
	s.h.MarkDirty()
}

func (s *Service) messageBody(q *host.Request, m *message) map[string]any {
	return map[string]any{
		"id": m.ID, "project_id": m.ProjectID, "action_id": m.ActionID, "detail_id": m.DetailID, "message_level": "ERROR",
		"created_at": host.Time(m.CreatedAt), "expires_at": host.Time(m.ExpiresAt), "request_id": m.RequestID,
		"links": s.links(q, "messages", m.ID), "resource_type": m.ResourceType, "resource_id": m.ResourceID,
		"user_message": m.UserMessage,
	}
}

func (s *Service) listMessages(q *host.Request) {
	if !q.MV.AtLeast("2.37") {
		notFound(q)
		return
	}
	lq, ok := parseList(q)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []item
	for _, m := range s.st.Messages {
		if m.ProjectID != q.ProjectID || !lq.text(q, "resource_id", m.ResourceID) || !lq.text(q, "resource_type", m.ResourceType) ||
			!lq.text(q, "action_id", m.ActionID) || !lq.text(q, "detail_id", m.DetailID) || !lq.text(q, "request_id", m.RequestID) ||
			!lq.text(q, "message_level", "ERROR") {
			continue
		}
		items = append(items, item{id: m.ID, createdAt: m.CreatedAt, body: s.messageBody(q, m),
			fields: map[string]string{"resource_id": m.ResourceID, "action_id": m.ActionID}})
	}
	lq.page(q, items, "messages", s.collectionURL(q, "messages"))
}

func (s *Service) visibleMessageLocked(q *host.Request) *message {
	if !q.MV.AtLeast("2.37") {
		notFound(q)
		return nil
	}
	id := q.P("message_id")
	return ownedLocked(q, s.st.Messages, id, fmt.Sprintf("Message %s could not be found.", id))
}

func (s *Service) getMessage(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.visibleMessageLocked(q); m != nil {
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"message": s.messageBody(q, m)})
	}
}

func (s *Service) deleteMessage(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.visibleMessageLocked(q); m != nil {
		delete(s.st.Messages, m.ID)
		s.h.MarkDirty()
		q.W.WriteHeader(http.StatusNoContent)
	}
}
