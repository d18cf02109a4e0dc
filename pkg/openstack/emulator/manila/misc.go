package manila

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

func (s *Service) miscRoutes(add func(string, string, host.Handler)) {
	add("GET", "/types", s.listTypes)
	add("GET", "/types/default", s.defaultType)
	add("GET", "/types/{type_id}", s.getType)
	add("GET", "/types/{type_id}/extra_specs", s.forbidden)
	add("POST", "/types", s.forbidden)
	add("GET", "/availability-zones", s.listAZs("2.7", ""))
	add("GET", "/os-availability-zone", s.listAZs("2.0", "2.6"))
	add("GET", "/limits", s.limits)
	add("GET", "/quota-sets/{project}", s.quotaSet(false))
	add("GET", "/quota-sets/{project}/detail", s.quotaSet(true))
	add("GET", "/quota-sets/{project}/defaults", s.quotaDefaults)
	add("PUT", "/quota-sets/{project}", s.forbidden)
	add("GET", "/messages", s.listMessages)
	add("GET", "/messages/{message_id}", s.getMessage)
	add("DELETE", "/messages/{message_id}", s.deleteMessage)
	s.shareNetworkRoutes(add)
}

// forbidden is Zed's answer to a member for an admin-only call.
func (s *Service) forbidden(q *host.Request) {
	host.WriteFault(q.W, http.StatusForbidden, "Access was denied to this resource.")
}

func (s *Service) listTypes(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lq, ok := parseList(q)
	if !ok {
		return
	}
	ids := make([]string, 0, len(s.st.Types))
	for id := range s.st.Types {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return s.st.Types[ids[i]].Name < s.st.Types[ids[j]].Name })
	out := []any{}
	for _, id := range ids {
		t := s.st.Types[id]
		if lq.dict("extra_specs", t.ExtraSpecs) {
			out = append(out, typeBody(q.MV, t))
		}
	}
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share_types": out, "volume_types": out})
}

func (s *Service) defaultType(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.defaultType()
	if t == nil {
		host.WriteFault(q.W, http.StatusNotFound, "Share type not found.")
		return
	}
	b := typeBody(q.MV, t)
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share_type": b, "volume_type": b})
}

// getType finds a type by id only; a name is 404 for a member on Zed.
func (s *Service) getType(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Types[q.P("type_id")]
	if t == nil {
		host.WriteFault(q.W, http.StatusNotFound, "Share type not found.")
		return
	}
	b := typeBody(q.MV, t)
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"share_type": b, "volume_type": b})
}

func (s *Service) listAZs(since, until string) host.Handler {
	return func(q *host.Request) {
		if !q.MV.AtLeast(since) || (until != "" && q.MV.AtLeast(nextMinor(until))) {
			notFound(q)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []any{}
		for _, az := range s.h.AvailabilityZones() {
			out = append(out, map[string]any{"id": s.st.AZIDs[az], "name": az, "created_at": host.Time(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), "updated_at": nil})
		}
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"availability_zones": out})
	}
}

// Quotas.

func (s *Service) quotaLocked(projectID string) Quota {
	if qt, ok := s.st.Quotas[projectID]; ok {
		return *qt
	}
	return s.opts.Quota
}

// SetQuota sets a project's Manila quota (an admin's quota-set update).
func (s *Service) SetQuota(projectID string, qt Quota) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Quotas[projectID] = &qt
	s.h.MarkDirty()
}

// QuotaOf returns a project's Manila quota in force.
func (s *Service) QuotaOf(projectID string) Quota {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotaLocked(projectID)
}

// ResetQuota returns a project to the default quota (an admin's
// quota-set delete).
func (s *Service) ResetQuota(projectID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.Quotas, projectID)
	s.h.MarkDirty()
}

type usage struct{ shares, gigabytes, snapshots, snapshotGigabytes, shareNetworks int }

func (s *Service) usageLocked(projectID string) usage {
	var u usage
	for _, sh := range s.st.Shares {
		if sh.ProjectID == projectID {
			u.shares++
			u.gigabytes += sh.Size
		}
	}
	for _, sn := range s.st.Snapshots {
		if sn.ProjectID == projectID {
			u.snapshots++
			u.snapshotGigabytes += sn.Size
		}
	}
	for _, n := range s.st.ShareNetworks {
		if n.ProjectID == projectID {
			u.shareNetworks++
		}
	}
	return u
}

// checkShareQuotaLocked answers 413 with Manila's messages when gb more
// gigabytes (and, for a new share, one more share) would pass the quota.
func (s *Service) checkShareQuotaLocked(q *host.Request, gb int, newShare bool) bool {
	qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
	if newShare && qt.PerShareGigabytes >= 0 && gb > qt.PerShareGigabytes {
		overLimit(q, fmt.Sprintf("ShareSizeExceedsLimit: Requested share size %d is larger than maximum allowed limit %d.", gb, qt.PerShareGigabytes))
		return false
	}
	if qt.Gigabytes >= 0 && u.gigabytes+gb > qt.Gigabytes {
		overLimit(q, "ShareSizeExceedsAvailableQuota: Requested share exceeds allowed project/user or share type gigabytes quota.")
		return false
	}
	if newShare && qt.Shares >= 0 && u.shares+1 > qt.Shares {
		overLimit(q, fmt.Sprintf("ShareLimitExceeded: Maximum number of shares allowed (%d) either per project/user or share type quota is exceeded.", qt.Shares))
		return false
	}
	return true
}

// checkExtendQuotaLocked is the extend's quota check: Zed answers it with
// 403 and no exception name (checked on the rig).
func (s *Service) checkExtendQuotaLocked(q *host.Request, gb int) bool {
	qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
	if qt.Gigabytes >= 0 && u.gigabytes+gb > qt.Gigabytes {
		host.WriteFault(q.W, http.StatusForbidden, "Requested share exceeds allowed project/user or share type gigabytes quota.")
		return false
	}
	return true
}

func (s *Service) checkSnapshotQuotaLocked(q *host.Request, gb int) bool {
	qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
	if qt.SnapshotGigabytes >= 0 && u.snapshotGigabytes+gb > qt.SnapshotGigabytes {
		overLimit(q, "SnapshotSizeExceedsAvailableQuota: Requested snapshot exceeds allowed project/user or share type gigabytes quota.")
		return false
	}
	if qt.Snapshots >= 0 && u.snapshots+1 > qt.Snapshots {
		overLimit(q, fmt.Sprintf("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) either per project/user or share type quota is exceeded.", qt.Snapshots))
		return false
	}
	return true
}

func (s *Service) quotaSet(detail bool) host.Handler {
	return func(q *host.Request) {
		if q.P("project") != q.ProjectID {
			s.forbidden(q)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
		body := quotaBody(qt, u, detail)
		body["id"] = q.ProjectID
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"quota_set": body})
	}
}

func (s *Service) quotaDefaults(q *host.Request) {
	body := quotaBody(s.opts.Quota, usage{}, false)
	body["id"] = q.P("project")
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"quota_set": body})
}

func quotaBody(qt Quota, u usage, detail bool) map[string]any {
	v := func(limit, used int) any {
		if detail {
			return map[string]any{"limit": limit, "in_use": used, "reserved": 0}
		}
		return limit
	}
	return map[string]any{
		"shares": v(qt.Shares, u.shares), "gigabytes": v(qt.Gigabytes, u.gigabytes), "snapshots": v(qt.Snapshots, u.snapshots),
		"snapshot_gigabytes": v(qt.SnapshotGigabytes, u.snapshotGigabytes), "share_networks": v(qt.ShareNetworks, u.shareNetworks),
		"share_groups": v(50, 0), "share_group_snapshots": v(50, 0), "share_replicas": v(100, 0), "replica_gigabytes": v(1000, 0),
		"per_share_gigabytes": v(qt.PerShareGigabytes, 0),
	}
}

func (s *Service) limits(q *host.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qt, u := s.quotaLocked(q.ProjectID), s.usageLocked(q.ProjectID)
	host.WriteJSON(q.W, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]any{
		"maxTotalShares": qt.Shares, "maxTotalShareSnapshots": qt.Snapshots, "maxTotalShareGigabytes": qt.Gigabytes,
		"maxTotalSnapshotGigabytes": qt.SnapshotGigabytes, "maxTotalShareNetworks": qt.ShareNetworks,
		"maxTotalShareGroups": 50, "maxTotalShareGroupSnapshots": 50, "maxTotalShareReplicas": 100, "maxTotalReplicaGigabytes": 1000,
		"totalSharesUsed": u.shares, "totalShareSnapshotsUsed": u.snapshots, "totalShareGigabytesUsed": u.gigabytes,
		"totalSnapshotGigabytesUsed": u.snapshotGigabytes, "totalShareNetworksUsed": u.shareNetworks,
		"totalShareGroupsUsed": 0, "totalShareGroupSnapshotsUsed": 0, "totalShareReplicasUsed": 0, "totalReplicaGigabytesUsed": 0,
	}}})
}
