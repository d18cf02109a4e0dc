package openstack

import (
	"context"
	"net/http"
)

type wireServer struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Status           string `json:"status"`
	AvailabilityZone string `json:"OS-EXT-AZ:availability_zone"`
}

type wireServerAttachment struct {
	ID       string `json:"id"`
	ServerID string `json:"serverId"`
	VolumeID string `json:"volumeId"`
	Device   string `json:"device"`
}

func (w wireServerAttachment) toAttachment() ServerAttachment {
	return ServerAttachment{ID: w.ID, ServerID: w.ServerID, VolumeID: w.VolumeID, Device: w.Device}
}

func (c *cloud) GetServer(ctx context.Context, id string) (*Server, error) {
	const op = "server_get"
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	sc, err := c.computeClient(ctx, "")
	if err != nil {
		return nil, err
	}
	var out struct {
		Server wireServer `json:"server"`
	}
	if err := do(ctx, sc, req{service: serviceCompute, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL("servers", id), out: &out, ok: []int{200, 203}}); err != nil {
		return nil, err
	}
	s := out.Server
	return &Server{ID: s.ID, Name: s.Name, Status: s.Status, AvailabilityZone: s.AvailabilityZone}, nil
}

// AttachVolume posts the attachment and returns Nova's answer; the volume
// is in-use only later (WaitVolume). A multiattach volume needs Nova 2.60;
// a cloud without it gets KindConflict.
func (c *cloud) AttachVolume(ctx context.Context, serverID, volumeID string, multiattach bool) (*ServerAttachment, error) {
	const op = "volume_attach"
	if err := checkID(op, serverID); err != nil {
		return nil, err
	}
	if err := checkID(op, volumeID); err != nil {
		return nil, err
	}
	mv := ""
	if multiattach {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
		if !c.Features().NovaMultiattach {
			return nil, &Error{Kind: KindConflict, Op: op, Resource: volumeID,
				Message: "attaching a multiattach volume needs Nova microversion " + mvNovaMultiattach}
		}
		mv = mvNovaMultiattach
	}
	sc, err := c.computeClient(ctx, mv)
	if err != nil {
		return nil, err
	}
	var out struct {
		Attachment wireServerAttachment `json:"volumeAttachment"`
	}
	body := map[string]any{"volumeAttachment": map[string]any{"volumeId": volumeID}}
	var adopted *ServerAttachment
	if err := c.sendChange(ctx, sc, volumeKey(volumeID), changeAttaching, req{service: serviceCompute, op: op, resource: volumeID, method: http.MethodPost,
		url: sc.ServiceURL("servers", serverID, "os-volume_attachments"), body: body, out: &out, ok: []int{200, 202},
		// An attach that was acted on is in the server's list.
		reconcile: func(ctx context.Context) (bool, error) {
			list, err := c.ListServerAttachments(ctx, serverID)
			if err != nil {
				return false, err
			}
			for i := range list {
				if list[i].VolumeID == volumeID {
					adopted = &list[i]
					return true, nil
				}
			}
			return false, nil
		}}); err != nil {
		return nil, err
	}
	a := out.Attachment.toAttachment()
	if adopted != nil {
		a = *adopted
	}
	if a.ServerID == "" {
		a.ServerID = serverID
	}
	if a.VolumeID == "" {
		a.VolumeID = volumeID
	}
	return &a, nil
}

func (c *cloud) DetachVolume(ctx context.Context, serverID, volumeID string) error {
	const op = "volume_detach"
	if err := checkID(op, serverID); err != nil {
		return err
	}
	if err := checkID(op, volumeID); err != nil {
		return err
	}
	sc, err := c.computeClient(ctx, "")
	if err != nil {
		return err
	}
	return c.sendChange(ctx, sc, volumeKey(volumeID), changeDetaching, req{service: serviceCompute, op: op, resource: volumeID, method: http.MethodDelete,
		url: sc.ServiceURL("servers", serverID, "os-volume_attachments", volumeID), ok: []int{202, 204}})
}

func (c *cloud) ListServerAttachments(ctx context.Context, serverID string) ([]ServerAttachment, error) {
	const op = "server_attachments_list"
	if err := checkID(op, serverID); err != nil {
		return nil, err
	}
	sc, err := c.computeClient(ctx, "")
	if err != nil {
		return nil, err
	}
	var out struct {
		Attachments []wireServerAttachment `json:"volumeAttachments"`
	}
	if err := do(ctx, sc, req{service: serviceCompute, op: op, resource: serverID, method: http.MethodGet,
		url: sc.ServiceURL("servers", serverID, "os-volume_attachments"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	res := make([]ServerAttachment, 0, len(out.Attachments))
	for _, a := range out.Attachments {
		res = append(res, a.toAttachment())
	}
	return res, nil
}
