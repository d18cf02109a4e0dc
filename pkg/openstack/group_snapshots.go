package openstack

import (
	"context"
	"net/http"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/poller"
)

// Group snapshot statuses.
const (
	GroupSnapshotCreating  = "creating"
	GroupSnapshotAvailable = "available"
	GroupSnapshotDeleting  = "deleting"
	GroupSnapshotError     = "error"
)

// GroupSnapshot is a Cinder group snapshot. Its member snapshots are
// ordinary snapshots with GroupSnapshotID set and the group snapshot's
// name.
type GroupSnapshot struct {
	ID          string
	Name        string
	Description string
	Status      string
	GroupID     string
	GroupTypeID string
	CreatedAt   time.Time
}

type wireGroupSnapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	GroupID     string `json:"group_id"`
	GroupTypeID string `json:"group_type_id"`
	CreatedAt   osTime `json:"created_at"`
}

func (w *wireGroupSnapshot) toGroupSnapshot() GroupSnapshot {
	return GroupSnapshot{ID: w.ID, Name: w.Name, Description: w.Description, Status: w.Status,
		GroupID: w.GroupID, GroupTypeID: w.GroupTypeID, CreatedAt: time.Time(w.CreatedAt)}
}

var groupSnapshotAPI = collection[wireGroupSnapshot, GroupSnapshot]{path: "group_snapshots", key: "group_snapshot",
	convert: (*wireGroupSnapshot).toGroupSnapshot,
	ref:     func(g *GroupSnapshot) resourceRef { return resourceRef{g.ID, g.Name, nil} },
	// Zed's resource_filters.json allows name, status and group_id.
	query: func(_ *cloud, o ListOpts) string {
		return listQuery(ListOpts{Name: o.Name, Limit: o.Limit, Marker: o.Marker}, true)
	}}

// groupPollers wait on groups and group snapshots with the volumes'
// schedule: on the openstack-rig (Zed, RBD) a group turns available in
// under 1 s and a two-volume group snapshot in 2-3 s, like snapshots.
type groupPollers struct {
	groups         *poller.Poller[VolumeGroup]
	groupSnapshots *poller.Poller[GroupSnapshot]
}

func newGroupPollers(c *cloud) *groupPollers {
	return &groupPollers{
		groups: poller.New(batchFetch(c.fetchGroup, func(ctx context.Context) ([]VolumeGroup, error) {
			return listAll(ctx, c, groupAPI, "group_poll", ListOpts{})
		}, func(g VolumeGroup) string { return g.ID }), volumePollConfig),
		groupSnapshots: poller.New(batchFetch(c.fetchGroupSnapshot, func(ctx context.Context) ([]GroupSnapshot, error) {
			return listAll(ctx, c, groupSnapshotAPI, "group_snapshot_poll", ListOpts{})
		}, func(g GroupSnapshot) string { return g.ID }), volumePollConfig),
	}
}

func (c *cloud) CreateGroupSnapshot(ctx context.Context, groupID, name, description string) (*GroupSnapshot, error) {
	const op = "group_snapshot_create"
	sc, err := c.groupClient(ctx, op, groupID)
	if err != nil {
		return nil, err
	}
	gs := map[string]any{"group_id": groupID, "name": name}
	if description != "" {
		gs["description"] = description
	}
	out := oneBody[wireGroupSnapshot]{key: "group_snapshot"}
	r := req{service: serviceVolume, op: op, resource: name, method: http.MethodPost,
		url: sc.ServiceURL("group_snapshots"), body: map[string]any{"group_snapshot": gs}, out: &out, ok: []int{202}}
	var adopted *GroupSnapshot
	if name != "" {
		r.reconcile = func(ctx context.Context) (bool, error) {
			found, err := c.FindGroupSnapshotsByName(ctx, name, description)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(found, "group snapshots", func(g *GroupSnapshot) bool { return g.GroupID == groupID })
			return adopted != nil, err
		}
	}
	if err := do(ctx, sc, r); err != nil {
		return nil, groupConflict(err)
	}
	if adopted != nil {
		return adopted, nil
	}
	created := out.item.toGroupSnapshot()
	created.Name, created.Description, created.GroupID = name, description, groupID
	if created.Status == "" {
		created.Status = GroupSnapshotCreating
	}
	return &created, nil
}

func (c *cloud) GetGroupSnapshot(ctx context.Context, id string) (*GroupSnapshot, error) {
	if err := c.groupsOff("group_snapshot_get"); err != nil {
		return nil, err
	}
	return getByID(ctx, c, groupSnapshotAPI, "group_snapshot_get", id)
}

func (c *cloud) fetchGroupSnapshot(ctx context.Context, id string) (GroupSnapshot, error) {
	return value(getByID(ctx, c, groupSnapshotAPI, "group_snapshot_poll", id))
}

func (c *cloud) FindGroupSnapshotsByName(ctx context.Context, name, descPrefix string) ([]GroupSnapshot, error) {
	return findGroupKind(ctx, c, groupSnapshotAPI, "group_snapshot_find", name, descPrefix,
		func(g *GroupSnapshot) string { return g.Description })
}

// GroupSnapshotMembers lists snapshots by the group snapshot's name (Zed
// does not filter snapshots by group_snapshot_id) and keeps its members.
func (c *cloud) GroupSnapshotMembers(ctx context.Context, gs *GroupSnapshot) ([]Snapshot, error) {
	const op = "group_snapshot_members"
	if err := c.groupsOff(op); err != nil {
		return nil, err
	}
	var all []Snapshot
	var err error
	if gs.Name != "" {
		all, err = findByName(ctx, c, snapshotAPI, op, gs.Name, nil)
	} else {
		all, err = listAll(ctx, c, snapshotAPI, op, ListOpts{})
	}
	if err != nil {
		return nil, err
	}
	var members []Snapshot
	for _, s := range all {
		if s.GroupSnapshotID == gs.ID {
			members = append(members, s)
		}
	}
	return members, nil
}

func (c *cloud) DeleteGroupSnapshot(ctx context.Context, id string) error {
	if err := c.groupsOff("group_snapshot_delete"); err != nil {
		return err
	}
	return groupConflict(deleteByID(ctx, c, groupSnapshotAPI.path, "group_snapshot_delete", id))
}

func (c *cloud) WaitGroupSnapshot(ctx context.Context, id string, done func(*GroupSnapshot) bool) (*GroupSnapshot, error) {
	return waitFor(ctx, c, c.groupPolls.groupSnapshots, "group_snapshot_wait", "group snapshot", id, done,
		func(g *GroupSnapshot) string { return g.Status })
}
