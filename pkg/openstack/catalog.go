package openstack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

func (c *cloud) ListAvailabilityZones(ctx context.Context) ([]string, error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Zones []struct {
			ZoneName  string `json:"zoneName"`
			ZoneState struct {
				Available bool `json:"available"`
			} `json:"zoneState"`
		} `json:"availabilityZoneInfo"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: "availability_zone_list", method: http.MethodGet,
		url: sc.ServiceURL("os-availability-zone"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	var zones []string
	for _, z := range out.Zones {
		if z.ZoneState.Available {
			zones = append(zones, z.ZoneName)
		}
	}
	sort.Strings(zones)
	return zones, nil
}

// GetVolumeType finds a type by id or name with one listing (Cinder's show
// takes only ids before 3.x and a name is what StorageClasses hold).
func (c *cloud) GetVolumeType(ctx context.Context, nameOrID string) (*VolumeType, error) {
	const op = "volume_type_get"
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Types []struct {
			ID         string            `json:"id"`
			Name       string            `json:"name"`
			ExtraSpecs map[string]string `json:"extra_specs"`
		} `json:"volume_types"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: nameOrID, method: http.MethodGet,
		url: sc.ServiceURL("types"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	for _, t := range out.Types {
		if t.ID == nameOrID || t.Name == nameOrID {
			vt := &VolumeType{ID: t.ID, Name: t.Name, ExtraSpecs: t.ExtraSpecs}
			if v, ok := t.ExtraSpecs["multiattach"]; ok {
				vt.Multiattach = strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "<is>")), "true")
			}
			return vt, nil
		}
	}
	return nil, &Error{Kind: KindNotFound, Op: op, Resource: nameOrID, Message: "no volume type with this name or id", StatusCode: http.StatusNotFound}
}

func (c *cloud) GetLimits(ctx context.Context) (*Limits, error) {
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Limits struct {
			Absolute struct {
				MaxTotalVolumeGigabytes  int `json:"maxTotalVolumeGigabytes"`
				MaxTotalVolumes          int `json:"maxTotalVolumes"`
				MaxTotalSnapshots        int `json:"maxTotalSnapshots"`
				MaxTotalBackupGigabytes  int `json:"maxTotalBackupGigabytes"`
				TotalGigabytesUsed       int `json:"totalGigabytesUsed"`
				TotalVolumesUsed         int `json:"totalVolumesUsed"`
				TotalSnapshotsUsed       int `json:"totalSnapshotsUsed"`
				TotalBackupGigabytesUsed int `json:"totalBackupGigabytesUsed"`
			} `json:"absolute"`
		} `json:"limits"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: "limits_get", method: http.MethodGet,
		url: sc.ServiceURL("limits"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	a := out.Limits.Absolute
	return &Limits{
		MaxTotalVolumeGigabytes: a.MaxTotalVolumeGigabytes, MaxTotalVolumes: a.MaxTotalVolumes,
		MaxTotalSnapshots: a.MaxTotalSnapshots, MaxTotalBackupGigabytes: a.MaxTotalBackupGigabytes,
		TotalGigabytesUsed: a.TotalGigabytesUsed, TotalVolumesUsed: a.TotalVolumesUsed,
		TotalSnapshotsUsed: a.TotalSnapshotsUsed, TotalBackupGigabytesUsed: a.TotalBackupGigabytesUsed,
	}, nil
}

type wireQuota struct {
	Limit    int `json:"limit"`
	InUse    int `json:"in_use"`
	Reserved int `json:"reserved"`
}

func (c *cloud) GetQuotaSet(ctx context.Context) (*QuotaSet, error) {
	const op = "quota_get"
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	project := c.project()
	if project == "" {
		return nil, &Error{Kind: KindConfig, Op: op, Message: "the token is not scoped to a project"}
	}
	var out struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: project, method: http.MethodGet,
		url: sc.ServiceURL("os-quota-sets", url.PathEscape(project)) + "?usage=true", out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	qs := &QuotaSet{PerType: map[string]QuotaUsage{}}
	for k, raw := range out.QuotaSet {
		var q wireQuota
		if json.Unmarshal(raw, &q) != nil {
			continue // "id" and other non-quota keys
		}
		u := QuotaUsage{Limit: q.Limit, InUse: q.InUse, Reserved: q.Reserved}
		switch {
		case k == "gigabytes":
			qs.Gigabytes = u
		case k == "volumes":
			qs.Volumes = u
		case k == "snapshots":
			qs.Snapshots = u
		case strings.HasPrefix(k, "gigabytes_"):
			qs.PerType[strings.TrimPrefix(k, "gigabytes_")] = u
		}
	}
	return qs, nil
}

// mvMessagesByResource: the messages API arrived in 3.3, filtering by
// resource_uuid in 3.5.
const mvMessagesByResource = "3.5"

func (c *cloud) LatestMessage(ctx context.Context, resourceID string) (*UserMessage, error) {
	const op = "message_list"
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	if v, perr := parseMV(c.Features().CinderMicroversion); perr != nil || v.less(mustMV(mvMessagesByResource)) {
		return nil, nil
	}
	q := url.Values{}
	q.Set("resource_uuid", resourceID)
	q.Set("sort", "created_at:desc")
	q.Set("limit", "1")
	var out struct {
		Messages []struct {
			ID           string `json:"id"`
			ResourceType string `json:"resource_type"`
			ResourceUUID string `json:"resource_uuid"`
			EventID      string `json:"event_id"`
			UserMessage  string `json:"user_message"`
			CreatedAt    osTime `json:"created_at"`
		} `json:"messages"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: resourceID, method: http.MethodGet,
		url: sc.ServiceURL("messages") + "?" + q.Encode(), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	var best *UserMessage
	for _, m := range out.Messages {
		if m.ResourceUUID != "" && m.ResourceUUID != resourceID {
			continue // a cloud that ignored the filter
		}
		um := &UserMessage{ID: m.ID, ResourceType: m.ResourceType, ResourceID: m.ResourceUUID,
			EventID: m.EventID, UserMessage: m.UserMessage, CreatedAt: timeOf(m.CreatedAt)}
		if best == nil || um.CreatedAt.After(best.CreatedAt) {
			best = um
		}
	}
	return best, nil
}
