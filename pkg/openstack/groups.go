package openstack

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Generic volume groups (block-storage API 3.13) and group types (3.11),
// the containers Cinder takes group snapshots of (3.14, group_snapshots.go).
// Groups carry no metadata: ownership is marked in the description, which
// callers pass through CreateGroupOpts and match on lookups.

// Group statuses as Cinder reports them.
const (
	GroupCreating  = "creating"
	GroupAvailable = "available"
	GroupUpdating  = "updating"
	GroupDeleting  = "deleting"
	GroupError     = "error"
)

// VolumeGroup is a Cinder generic volume group.
type VolumeGroup struct {
	ID               string
	Name             string
	Description      string
	Status           string
	GroupTypeID      string
	VolumeTypeIDs    []string
	AvailabilityZone string
	CreatedAt        time.Time
}

// GroupType is a Cinder group type with its group specs.
type GroupType struct {
	ID         string
	Name       string
	GroupSpecs map[string]string
	// Consistent is group spec consistent_group_snapshot_enabled="<is> True":
	// the backend snapshots the members together (RBD on Zed takes them one
	// after another under the group's lock; see docs/design.md).
	Consistent bool
}

// CreateGroupOpts describes a group to create.
type CreateGroupOpts struct {
	Name             string
	Description      string
	GroupType        string   // name or id
	VolumeTypes      []string // names or ids; every member's type must be listed
	AvailabilityZone string
}

// UpdateGroupOpts changes a group: volumes to add or remove, and a new
// description (nil: unchanged).
type UpdateGroupOpts struct {
	AddVolumes    []string
	RemoveVolumes []string
	Description   *string
}

// GroupCloud is what the GroupController asks of a cloud beyond Cloud. The
// concrete cloud implements it; a Cloud that does not (a unit test's fake)
// has no group snapshots.
type GroupCloud interface {
	GetGroupType(ctx context.Context, nameOrID string) (*GroupType, error)
	CreateGroup(ctx context.Context, opts CreateGroupOpts) (*VolumeGroup, error)
	GetGroup(ctx context.Context, id string) (*VolumeGroup, error)
	// FindGroupsByName returns the groups named name whose description
	// starts with descPrefix ("" for any).
	FindGroupsByName(ctx context.Context, name, descPrefix string) ([]VolumeGroup, error)
	// ListGroups returns every group of the project.
	ListGroups(ctx context.Context) ([]VolumeGroup, error)
	// UpdateGroup returns once Cinder accepted the change; the group is
	// "updating" until it is done.
	UpdateGroup(ctx context.Context, id string, opts UpdateGroupOpts) error
	// GroupVolumes returns the ids of the group's volumes.
	GroupVolumes(ctx context.Context, id string) ([]string, error)
	// DeleteGroup deletes an empty group (delete-volumes false: a member
	// volume is never deleted with it).
	DeleteGroup(ctx context.Context, id string) error

	CreateGroupSnapshot(ctx context.Context, groupID, name, description string) (*GroupSnapshot, error)
	GetGroupSnapshot(ctx context.Context, id string) (*GroupSnapshot, error)
	FindGroupSnapshotsByName(ctx context.Context, name, descPrefix string) ([]GroupSnapshot, error)
	// GroupSnapshotMembers returns the member snapshots of a group
	// snapshot (Cinder names them like the group snapshot).
	GroupSnapshotMembers(ctx context.Context, gs *GroupSnapshot) ([]Snapshot, error)
	DeleteGroupSnapshot(ctx context.Context, id string) error

	// Waits, as Cloud's: bounded by ctx, KindErrorState on an error
	// status, KindNotFound once the resource is gone, KindTimeout with
	// the last observed object on the deadline.
	WaitGroup(ctx context.Context, id string, done func(*VolumeGroup) bool) (*VolumeGroup, error)
	WaitGroupSnapshot(ctx context.Context, id string, done func(*GroupSnapshot) bool) (*GroupSnapshot, error)
}

var _ GroupCloud = (*cloud)(nil)

type wireGroup struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Description      string   `json:"description"`
	Status           string   `json:"status"`
	GroupType        string   `json:"group_type"`
	VolumeTypes      []string `json:"volume_types"`
	AvailabilityZone string   `json:"availability_zone"`
	CreatedAt        osTime   `json:"created_at"`
}

func (w *wireGroup) toGroup() VolumeGroup {
	return VolumeGroup{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		GroupTypeID: w.GroupType, VolumeTypeIDs: w.VolumeTypes, AvailabilityZone: w.AvailabilityZone,
		CreatedAt: time.Time(w.CreatedAt)}
}

type wireGroupType struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	GroupSpecs map[string]string `json:"group_specs"`
}

var groupAPI = collection[wireGroup, VolumeGroup]{path: "groups", key: "group", convert: (*wireGroup).toGroup,
	ref: func(g *VolumeGroup) resourceRef { return resourceRef{g.ID, g.Name, nil} },
	// Zed's resource_filters.json allows "name" on groups.
	query: func(_ *cloud, o ListOpts) string {
		return listQuery(ListOpts{Name: o.Name, Limit: o.Limit, Marker: o.Marker}, true)
	}}

// groupsOff refuses a group call on a cloud below 3.14.
func (c *cloud) groupsOff(op string) error {
	if c.Features().Groups {
		return nil
	}
	return &Error{Kind: KindConfig, Op: op, Message: "Cinder offers microversion " + c.Features().CinderMicroversion +
		"; volume groups and group snapshots need " + mvGroups + " or later"}
}

// groupClient opens a call on one group resource: groups on, id well
// formed, then the volume client.
func (c *cloud) groupClient(ctx context.Context, op, id string) (gopherClient, error) {
	if err := c.groupsOff(op); err != nil {
		return nil, err
	}
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	return c.volumeClient(ctx)
}

func (c *cloud) GetGroupType(ctx context.Context, ref string) (*GroupType, error) {
	const op = "group_type_get"
	sc, err := c.groupClient(ctx, op, ref)
	if err != nil {
		return nil, err
	}
	// GET /group_types/<name> answers 404 for a name; list and match.
	var out struct {
		Types []wireGroupType `json:"group_types"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: ref, method: http.MethodGet,
		url: sc.ServiceURL("group_types"), out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	for _, t := range out.Types {
		if t.ID == ref || t.Name == ref {
			return &GroupType{ID: t.ID, Name: t.Name, GroupSpecs: t.GroupSpecs,
				Consistent: bool(flexBoolOf(t.GroupSpecs["consistent_group_snapshot_enabled"]))}, nil
		}
	}
	return nil, &Error{Kind: KindNotFound, Op: op, Resource: ref, Message: "no group type has this name or id", StatusCode: http.StatusNotFound}
}

func flexBoolOf(s string) flexBool {
	return flexBool(strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "<is>")), "true"))
}

func (c *cloud) CreateGroup(ctx context.Context, o CreateGroupOpts) (*VolumeGroup, error) {
	const op = "group_create"
	if err := c.groupsOff(op); err != nil {
		return nil, err
	}
	sc, err := c.volumeClient(ctx)
	if err != nil {
		return nil, err
	}
	g := map[string]any{"name": o.Name, "group_type": o.GroupType, "volume_types": o.VolumeTypes}
	if o.Description != "" {
		g["description"] = o.Description
	}
	if o.AvailabilityZone != "" {
		g["availability_zone"] = o.AvailabilityZone
	}
	out := oneBody[wireGroup]{key: "group"}
	r := req{service: serviceVolume, op: op, resource: o.Name, method: http.MethodPost,
		url: sc.ServiceURL("groups"), body: map[string]any{"group": g}, out: &out, ok: []int{202}}
	var adopted *VolumeGroup
	if o.Name != "" {
		// Name and description (our ownership mark) identify the group
		// an ambiguous create made.
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindGroupsByName(ctx, o.Name, o.Description)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "groups", func(*VolumeGroup) bool { return true })
			return adopted != nil, err
		}
	}
	if err := do(ctx, sc, r); err != nil {
		return nil, groupConflict(err)
	}
	if adopted != nil {
		return adopted, nil
	}
	// The create answer holds only id and name.
	created := out.item.toGroup()
	if created.Status == "" {
		created.Status = GroupCreating
	}
	created.Name, created.Description = o.Name, o.Description
	return &created, nil
}

func (c *cloud) GetGroup(ctx context.Context, id string) (*VolumeGroup, error) {
	if err := c.groupsOff("group_get"); err != nil {
		return nil, err
	}
	return getByID(ctx, c, groupAPI, "group_get", id)
}

func (c *cloud) fetchGroup(ctx context.Context, id string) (VolumeGroup, error) {
	return value(getByID(ctx, c, groupAPI, "group_poll", id))
}

func (c *cloud) FindGroupsByName(ctx context.Context, name, descPrefix string) ([]VolumeGroup, error) {
	return findGroupKind(ctx, c, groupAPI, "group_find", name, descPrefix,
		func(g *VolumeGroup) string { return g.Description })
}

// findGroupKind finds the groups or group snapshots named name whose
// description starts with descPrefix (the driver's ownership mark: groups
// carry no metadata).
func findGroupKind[W, T any](ctx context.Context, c *cloud, api collection[W, T], op, name, descPrefix string, desc func(*T) string) ([]T, error) {
	if err := c.groupsOff(op); err != nil {
		return nil, err
	}
	found, err := findByName(ctx, c, api, op, name, nil)
	if err != nil {
		return nil, err
	}
	kept := found[:0]
	for i := range found {
		if strings.HasPrefix(desc(&found[i]), descPrefix) {
			kept = append(kept, found[i])
		}
	}
	return kept, nil
}

func (c *cloud) ListGroups(ctx context.Context) ([]VolumeGroup, error) {
	if err := c.groupsOff("group_list"); err != nil {
		return nil, err
	}
	return listAll(ctx, c, groupAPI, "group_list", ListOpts{})
}

func (c *cloud) UpdateGroup(ctx context.Context, id string, o UpdateGroupOpts) error {
	const op = "group_update"
	sc, err := c.groupClient(ctx, op, id)
	if err != nil {
		return err
	}
	g := map[string]any{}
	if len(o.AddVolumes) > 0 {
		g["add_volumes"] = strings.Join(o.AddVolumes, ",")
	}
	if len(o.RemoveVolumes) > 0 {
		g["remove_volumes"] = strings.Join(o.RemoveVolumes, ",")
	}
	if o.Description != nil {
		g["description"] = *o.Description
	}
	// Not reconciled: a repeated add or remove of the same volumes is
	// refused with 400 ("already in group"/"not in the group"), which the
	// caller reads back from the volumes' group_id.
	err = do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodPut,
		url: sc.ServiceURL("groups", id), body: map[string]any{"group": g}, ok: []int{202}})
	return groupConflict(err)
}

func (c *cloud) DeleteGroup(ctx context.Context, id string) error {
	const op = "group_delete"
	sc, err := c.groupClient(ctx, op, id)
	if err != nil {
		return err
	}
	err = do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodPost,
		url: sc.ServiceURL("groups", id, "action"), body: map[string]any{"delete": map[string]any{"delete-volumes": false}}, ok: []int{202}})
	return groupConflict(err)
}

func (c *cloud) WaitGroup(ctx context.Context, id string, done func(*VolumeGroup) bool) (*VolumeGroup, error) {
	return waitFor(ctx, c, c.groupPolls.groups, "group_wait", "group", id, done, func(g *VolumeGroup) string { return g.Status })
}

// groupConflictPhrases are Zed's 400 answers to group calls that mean
// "not now, or not in this state" rather than "bad input"
// (cinder/group/api.py; checked on the openstack-rig).
var groupConflictPhrases = []string{
	"already in group",             // add: the volume is in another group
	"is not in the group",          // remove: already removed
	"group has existing snapshots", // delete: a group snapshot remains
	"dependent group snapshots",    // delete
	"group must not have",          // delete: members remain
	"still contains volumes",       // delete without delete-volumes
	"group status must be",         // update/delete while updating
	"groupsnapshot status must be", // delete while creating
	"cannot be empty or in",        // group snapshot of an empty or updating group
}

// groupConflict turns those 400s into KindConflict.
func groupConflict(err error) error {
	e, ok := err.(*Error)
	if !ok || e.Kind != KindBadRequest {
		return err
	}
	lower := strings.ToLower(e.Message)
	for _, p := range groupConflictPhrases {
		if strings.Contains(lower, p) {
			e.Kind = KindConflict
			break
		}
	}
	return e
}

// GroupVolumes returns the ids of the volumes in a group (3.25
// list_volume, which the Groups feature requires).
func (c *cloud) GroupVolumes(ctx context.Context, id string) ([]string, error) {
	const op = "group_volumes"
	sc, err := c.groupClient(ctx, op, id)
	if err != nil {
		return nil, err
	}
	var out struct {
		Group struct {
			Volumes []string `json:"volumes"`
		} `json:"group"`
	}
	if err := do(ctx, sc, req{service: serviceVolume, op: op, resource: id, method: http.MethodGet,
		url: sc.ServiceURL("groups", id) + "?list_volume=True", out: &out, ok: []int{200}}); err != nil {
		return nil, err
	}
	return out.Group.Volumes, nil
}
