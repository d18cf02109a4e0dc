package openstack

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
)

// ListServersByName returns the servers whose name matches the anchored
// regular expression: Nova's name filter is a regular expression search
// (the Python flavour, of which this package only sends the common subset
// QuoteMeta and character classes), and the answer is checked again here.
func (c *cloud) ListServersByName(ctx context.Context, name *regexp.Regexp) ([]Server, error) {
	const op = "server_list"
	sc, err := c.computeClient(ctx, "")
	if err != nil {
		return nil, err
	}
	var out struct {
		Servers []wireServer `json:"servers"`
	}
	u := sc.ServiceURL("servers", "detail") + "?name=" + url.QueryEscape(name.String())
	if err := do(ctx, sc, req{service: serviceCompute, op: op, resource: name.String(), method: http.MethodGet,
		url: u, out: &out, ok: []int{200, 203}}); err != nil {
		return nil, err
	}
	res := []Server{}
	for _, s := range out.Servers {
		if name.MatchString(s.Name) {
			res = append(res, Server{ID: s.ID, Name: s.Name, Status: s.Status, AvailabilityZone: s.AvailabilityZone})
		}
	}
	return res, nil
}

// mvCinderAttachments is the microversion of Cinder's attachments API.
const mvCinderAttachments = "3.27"

// DeleteAttachment removes a Cinder attachment record (DELETE
// /attachments/{id}, 3.27). It frees a volume whose attachment names a
// server that no longer exists, which Nova can no longer detach. A missing
// attachment is success.
func (c *cloud) DeleteAttachment(ctx context.Context, attachmentID string) error {
	const op = "attachment_delete"
	if err := checkID(op, attachmentID); err != nil {
		return err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return err
	}
	mv := sc.Microversion
	if mv == "" {
		mv = baseCinderMicroversion
	}
	if mustMV(mv).less(mustMV(mvCinderAttachments)) {
		return &Error{Kind: KindConflict, Op: op, Resource: attachmentID,
			Message: "deleting a Cinder attachment needs volume microversion " + mvCinderAttachments}
	}
	err = do(ctx, sc, req{service: serviceVolume, op: op, resource: attachmentID, method: http.MethodDelete,
		url: sc.ServiceURL("attachments", attachmentID), ok: []int{200, 202, 204}})
	if IsNotFound(err) {
		return nil
	}
	return err
}
