package manila

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Share networks exist for the driver's shareNetworkID parameter; the
// emulated backends do not handle share servers, so nothing is built on
// them.
func (s *Service) shareNetworkRoutes(add func(string, string, host.Handler)) {
	add("POST", "/share-networks", s.createShareNetwork)
	add("GET", "/share-networks", s.listShareNetworks(false))
	add("GET", "/share-networks/detail", s.listShareNetworks(true))
	add("GET", "/share-networks/{network_id}", s.getShareNetwork)
	add("DELETE", "/share-networks/{network_id}", s.deleteShareNetwork)
}

func (s *Service) shareNetworkBody(q *host.Request, n *shareNetwork) map[string]any {
	b := map[string]any{
		"id": n.ID, "name": nullable(n.Name), "description": nullable(n.Description), "project_id": n.ProjectID,
		"created_at": host.Time(n.CreatedAt), "updated_at": host.Time(n.UpdatedAt),
	}
	subnet := map[string]any{
		"id": n.SubnetID, "availability_zone": nullable(n.AZ), "share_network_id": n.ID, "created_at": host.Time(n.CreatedAt),
		"updated_at": nil, "segmentation_id": nil, "neutron_net_id": nullable(n.NeutronNetID),
		"neutron_subnet_id": nullable(n.NeutronSubnetID), "ip_version": nil, "cidr": nil, "network_type": nil, "mtu": nil, "gateway": nil,
	}
	if q.MV.AtLeast("2.49") {
		b["share_network_subnets"] = []any{subnet}
	} else {
		for _, k := range []string{"segmentation_id", "neutron_net_id", "neutron_subnet_id", "ip_version", "cidr", "network_type", "mtu", "gateway"} {
			b[k] = subnet[k]
		}
	}
	if q.MV.AtLeast("2.63") {
		b["status"], b["security_service_update_support"] = "active", true
	}
	if q.MV.AtLeast("2.70") {
		b["network_allocation_update_support"] = true
	}
	return b
}

func (s *Service) createShareNetwork(q *host.Request) {
	var body struct {
		ShareNetwork *struct {
			Name             string `json:"name"`
			Description      string `json:"description"`
			NeutronNetID     string `json:"neutron_net_id"`
			NeutronSubnetID  string `json:"neutron_subnet_id"`
			AvailabilityZone string `json:"availability_zone"`
		} `json:"share_network"`
	}
	if !host.DecodeBody(q.W, q.R, &body) {
		return
	}
	in := body.ShareNetwork
	if in == nil {
		host.WriteFault(q.W, http.StatusUnprocessableEntity, "Unable to process the contained instructions")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
	if qt.ShareNetworks >= 0 && u.shareNetworks+1 > qt.ShareNetworks {
		overLimit(q, fmt.Sprintf("ShareNetworksLimitExceeded: Maximum number of share-networks allowed (%d) exceeded.", qt.ShareNetworks))
		return
	}
	now := time.Now().UTC()
	n := &shareNetwork{ID: host.NewUUID(), SubnetID: host.NewUUID(), Name: in.Name, Description: in.Description, ProjectID: q.ProjectID,
		NeutronNetID: in.NeutronNetID, NeutronSubnetID: in.NeutronSubnetID, AZ: in.AvailabilityZone, CreatedAt: now}
	s.st.ShareNetworks[n.ID] = n
	s.h.MarkDirty()
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share_network": s.shareNetworkBody(q, n)})
}

func (s *Service) listShareNetworks(detail bool) host.Handler {
	return func(q *host.Request) {
		lq, ok := parseList(q)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var items []item
		for _, n := range s.st.ShareNetworks {
			if n.ProjectID != q.ProjectID || !lq.text(q, "name", n.Name) {
				continue
			}
			var body any = map[string]any{"id": n.ID, "name": nullable(n.Name)}
			if detail {
				body = s.shareNetworkBody(q, n)
			}
			items = append(items, item{id: n.ID, createdAt: n.CreatedAt, body: body, fields: map[string]string{"name": n.Name}})
		}
		lq.page(q, items, "share_networks", s.collectionURL(q, "share-networks"))
	}
}

func (s *Service) visibleNetworkLocked(q *host.Request) *shareNetwork {
	id := q.P("network_id")
	return ownedLocked(q, s.st.ShareNetworks, id, fmt.Sprintf("Share network %s could not be found.", id))
}

func (s *Service) getShareNetwork(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.visibleNetworkLocked(q); n != nil {
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"share_network": s.shareNetworkBody(q, n)})
	}
}

func (s *Service) deleteShareNetwork(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.visibleNetworkLocked(q)
	if n == nil {
		return
	}
	for _, sh := range s.st.Shares {
		if sh.ShareNetworkID == n.ID {
			host.WriteFault(q.W, http.StatusConflict, fmt.Sprintf("Can not delete share network %s, it has 1 share(s).", n.ID))
			return
		}
	}
	delete(s.st.ShareNetworks, n.ID)
	s.h.MarkDirty()
	q.W.WriteHeader(http.StatusAccepted)
}
