package manila

import (
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// Bodies as Manila Zed renders them for a project member (no host,
// share_server_id, share_instance_id or is_admin_only), key by key with
// the microversion that added it (checked on the rig at 2.0, 2.8 and 2.73).

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// legacyExports are the share's export paths as microversions below 2.9
// give them in the share body: the first and the list.
func legacyExports(sh *share) (first any, paths []any) {
	paths = []any{}
	for _, el := range visibleExports(sh) {
		paths = append(paths, el.Path)
		if first == nil {
			first = el.Path
		}
	}
	return first, paths
}

func (s *Service) shareBodyLocked(q *host.Request, sh *share) map[string]any {
	mv := q.MV
	t := s.st.Types[sh.TypeID]
	typeName := ""
	if t != nil {
		typeName = t.Name
	}
	var az any
	if sh.Scheduled || sh.AZExplicit {
		az = nullable(sh.AZ)
	}
	b := map[string]any{
		"id": sh.ID, "size": sh.Size, "availability_zone": az, "created_at": host.Time(sh.CreatedAt),
		"status": sh.Status, "name": nullable(sh.Name), "description": nullable(sh.Description),
		"project_id": sh.ProjectID, "snapshot_id": nullable(sh.SnapshotID), "share_network_id": nullable(sh.ShareNetworkID),
		"share_proto": sh.Proto, "metadata": copyMap(sh.Metadata), "share_type": sh.TypeID, "volume_type": typeName,
		"links": s.links(q, "shares", sh.ID), "is_public": sh.IsPublic,
	}
	if !mv.AtLeast("2.6") {
		b["share_type"] = typeName
	}
	if !mv.AtLeast("2.9") {
		b["export_location"], b["export_locations"] = legacyExports(sh)
	}
	specs := map[string]string{}
	if t != nil {
		specs = t.ExtraSpecs
	}
	if mv.AtLeast("2.2") {
		b["snapshot_support"] = isTrue(specs["snapshot_support"])
	}
	if mv.AtLeast("2.5") {
		b["task_state"] = nullable(sh.TaskState)
	}
	if mv.AtLeast("2.6") {
		b["share_type_name"] = typeName
	}
	if mv.AtLeast("2.10") {
		b["access_rules_status"] = s.accessRulesStatusLocked(sh.ID)
	}
	if mv.AtLeast("2.11") {
		b["replication_type"], b["has_replicas"] = nil, false
	}
	if mv.AtLeast("2.16") {
		b["user_id"] = sh.UserID
	}
	if mv.AtLeast("2.24") {
		b["create_share_from_snapshot_support"] = isTrue(specs["create_share_from_snapshot_support"])
	}
	if mv.AtLeast("2.27") {
		b["revert_to_snapshot_support"] = isTrue(specs["revert_to_snapshot_support"])
	}
	if mv.AtLeast("2.31") {
		b["share_group_id"], b["source_share_group_snapshot_member_id"] = nullable(sh.ShareGroupID), nil
	}
	if mv.AtLeast("2.32") {
		b["mount_snapshot_support"] = isTrue(specs["mount_snapshot_support"])
	}
	if mv.AtLeast("2.54") {
		b["progress"] = progress(sh.Status)
	}
	if mv.AtLeast("2.69") {
		b["is_soft_deleted"], b["scheduled_to_be_deleted_at"] = false, nil
	}
	return b
}

// progress is "100%" once the share exists on its backend; null while it is
// being made (the rig answers null in the create response) or failed.
func progress(status string) any {
	switch status {
	case "creating", "creating_from_snapshot", "error":
		return nil
	}
	return "100%"
}

func isTrue(v string) bool {
	switch v {
	case "True", "true", "<is> True", "1":
		return true
	}
	return false
}

// visibleExports are the export locations a member sees (admin-only ones
// are hidden from non-admins).
func visibleExports(sh *share) []*exportLocation {
	var out []*exportLocation
	for _, el := range sh.Exports {
		if !el.IsAdminOnly {
			out = append(out, el)
		}
	}
	return out
}

// exportBody renders an export location; one shown on its own (detail)
// also has its timestamps.
func exportBody(mv host.Microversion, el *exportLocation, created time.Time, detail bool) map[string]any {
	b := map[string]any{"id": el.ID, "path": el.Path}
	if mv.AtLeast("2.14") {
		b["preferred"] = el.Preferred
	}
	if detail {
		b["created_at"], b["updated_at"] = host.Time(created), host.Time(created)
	}
	return b
}

// accessBody renders a rule; inList drops share_id, as the list calls do.
func accessBody(mv host.Microversion, r *accessRule, inList bool) map[string]any {
	b := map[string]any{"id": r.ID, "access_level": r.Level, "access_to": r.To, "access_type": r.Type, "state": legacyState(mv, r.State)}
	if !inList {
		b["share_id"] = r.ShareID
	}
	if mv.AtLeast("2.21") {
		b["access_key"] = nullable(r.Key)
	}
	if mv.AtLeast("2.33") {
		b["created_at"], b["updated_at"] = host.Time(r.CreatedAt), host.Time(r.UpdatedAt)
	}
	if mv.AtLeast("2.45") {
		b["metadata"] = copyMap(r.Metadata)
	}
	return b
}

// legacyState maps the transitional states of 2.28 to the older ones.
func legacyState(mv host.Microversion, st string) string {
	if mv.AtLeast("2.28") {
		return st
	}
	switch st {
	case "queued_to_apply", "applying":
		return "new"
	case "queued_to_deny", "denying":
		return "active"
	}
	return st
}

func (s *Service) snapshotBody(q *host.Request, sn *snapshot) map[string]any {
	b := map[string]any{
		"id": sn.ID, "share_id": sn.ShareID, "share_size": sn.ShareSize, "created_at": host.Time(sn.CreatedAt),
		"status": sn.Status, "name": nullable(sn.Name), "description": nullable(sn.Description), "size": sn.Size,
		"share_proto": sn.Proto, "links": s.links(q, "snapshots", sn.ID),
	}
	if q.MV.AtLeast("2.17") {
		b["user_id"], b["project_id"] = sn.UserID, sn.ProjectID
	}
	if q.MV.AtLeast("2.73") {
		b["metadata"] = copyMap(sn.Metadata)
	}
	return b
}

// memberSpecs are the extra specs a non-admin sees: the tenant-visible
// capabilities, with revert and mount support false when unset.
var memberSpecKeys = []string{"driver_handles_share_servers", "snapshot_support", "create_share_from_snapshot_support",
	"revert_to_snapshot_support", "mount_snapshot_support", "availability_zones"}

func typeBody(mv host.Microversion, t *shareType) map[string]any {
	specs := map[string]any{}
	for _, k := range memberSpecKeys {
		if v, ok := t.ExtraSpecs[k]; ok {
			specs[k] = v
		}
	}
	for _, k := range []string{"revert_to_snapshot_support", "mount_snapshot_support"} {
		if _, ok := specs[k]; !ok {
			specs[k] = false
		}
	}
	b := map[string]any{
		"id": t.ID, "name": t.Name, "extra_specs": specs,
		"required_extra_specs":        map[string]any{"driver_handles_share_servers": t.ExtraSpecs["driver_handles_share_servers"]},
		"share_type_access:is_public": t.IsPublic,
	}
	if mv.AtLeast("2.41") {
		b["description"] = nullable(t.Description)
	}
	if mv.AtLeast("2.46") {
		b["is_default"] = t.IsDefault
	}
	return b
}
