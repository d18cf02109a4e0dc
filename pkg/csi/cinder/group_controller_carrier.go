package cinder

import (
	"context"
	"strings"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// The carrier group: the generic volume group a CreateVolumeGroupSnapshot
// puts its source volumes in. Every step reads the current state first, so
// a crash between two of them converges on the retry.

// owns reports whether a group or group snapshot description is ours.
func (g *GroupControllerServer) owns(description string) bool {
	return strings.HasPrefix(description, g.ownerDescription())
}

// carrierGroup finds or creates the group named name and puts srcs in it.
// Every source volume is checked first, so a refusal changes nothing.
func (g *GroupControllerServer) carrierGroup(ctx context.Context, c openstack.Cloud, gc openstack.GroupCloud, name string, srcs []string, gp *params.GroupSnapshot) (*openstack.VolumeGroup, error) {
	groups, err := gc.FindGroupsByName(ctx, name, g.ownerDescription())
	if err != nil {
		return nil, StatusFromError(err, "looking up group %q", name)
	}
	if len(groups) > 1 {
		return nil, errPrecondition("%d Cinder groups are named %q; delete all but one", len(groups), name)
	}
	var group *openstack.VolumeGroup
	if len(groups) == 1 {
		group = &groups[0]
	}
	created := false
	types, az, toAdd, err := g.checkSources(ctx, c, gc, srcs, group)
	if err != nil {
		return nil, err
	}
	if group == nil {
		if _, err := gc.GetGroupType(ctx, gp.GroupType); openstack.IsNotFound(err) {
			return nil, errInvalid("VolumeGroupSnapshotClass parameter %q: Cinder has no group type %q", params.KeyGroupType, gp.GroupType)
		} else if err != nil {
			return nil, StatusFromError(err, "reading group type %q", gp.GroupType)
		}
		group, err = gc.CreateGroup(ctx, openstack.CreateGroupOpts{Name: name, Description: g.ownerDescription(),
			GroupType: gp.GroupType, VolumeTypes: types, AvailabilityZone: az})
		if err != nil {
			return nil, StatusFromError(err, "creating group %q of type %q for volume types %v", name, gp.GroupType, types)
		}
		klog.FromContext(ctx).Info("Created carrier group", "groupID", group.ID, "name", name, "groupType", gp.GroupType)
		created = true
	}
	if group, err = g.waitGroupAvailable(ctx, gc, group); err != nil {
		return nil, err
	}
	if len(toAdd) == 0 {
		return group, nil
	}
	if err := gc.UpdateGroup(ctx, group.ID, openstack.UpdateGroupOpts{AddVolumes: toAdd}); err != nil {
		if created && openstack.KindOf(err) == openstack.KindConflict {
			// A concurrent group snapshot took a volume first: do not keep
			// an empty group the retry may never come back for.
			if derr := g.discardGroup(ctx, gc, group.ID); derr != nil {
				klog.FromContext(ctx).Error(derr, "Deleting the unused carrier group failed; a retry or DeleteVolumeGroupSnapshot finds it by name", "groupID", group.ID)
			}
		}
		return nil, StatusFromError(err, "adding volumes %v to group %s", toAdd, group.ID)
	}
	return g.waitGroupAvailable(ctx, gc, group)
}

// checkSources reads every source volume: it must exist and be in no group
// but ours. It returns the volume types the group must list, the common
// AZ ("" when they differ) and the volumes still to add.
func (g *GroupControllerServer) checkSources(ctx context.Context, c openstack.Cloud, gc openstack.GroupCloud, srcs []string, group *openstack.VolumeGroup) (types []string, az string, toAdd []string, err error) {
	seenType, azs := map[string]bool{}, map[string]bool{}
	for _, id := range srcs {
		v, err := c.GetVolume(ctx, id)
		if openstack.IsNotFound(err) {
			return nil, "", nil, errNotFound("source volume %s not found", id)
		}
		if err != nil {
			return nil, "", nil, StatusFromError(err, "reading source volume %s", id)
		}
		switch {
		case group != nil && v.GroupID == group.ID:
			// Added by an earlier attempt.
		case v.GroupID != "":
			return nil, "", nil, g.inOtherGroup(ctx, gc, v)
		default:
			toAdd = append(toAdd, id)
		}
		if v.VolumeType != "" && !seenType[v.VolumeType] {
			seenType[v.VolumeType] = true
			types = append(types, v.VolumeType)
		}
		azs[v.AvailabilityZone] = true
	}
	if len(azs) == 1 {
		for a := range azs {
			az = a
		}
	}
	return types, az, toAdd, nil
}

// inOtherGroup explains a source volume already in a group: ours (another
// group snapshot is being taken: retry) or a user's (Cinder allows one
// group per volume: the user must choose).
func (g *GroupControllerServer) inOtherGroup(ctx context.Context, gc openstack.GroupCloud, v *openstack.Volume) error {
	other, err := gc.GetGroup(ctx, v.GroupID)
	if err != nil && !openstack.IsNotFound(err) {
		return StatusFromError(err, "reading group %s of source volume %s", v.GroupID, v.ID)
	}
	if other != nil && strings.HasPrefix(other.Description, groupDescription) {
		return errInProgress("source volume %s is in group %s of group snapshot %q, which is still being taken; retry", v.ID, other.ID, other.Name)
	}
	return errPrecondition("source volume %s belongs to Cinder group %s; a volume is in one group at most, so remove it from that group to snapshot it with others", v.ID, v.GroupID)
}

// waitGroupAvailable waits within the request for a creating or updating
// group; Aborted when the deadline comes first.
func (g *GroupControllerServer) waitGroupAvailable(ctx context.Context, gc openstack.GroupCloud, group *openstack.VolumeGroup) (*openstack.VolumeGroup, error) {
	last, err := waitGroupReady(ctx, gc, group.ID)
	if openstack.KindOf(err) == openstack.KindErrorState {
		// An errored carrier group holds nothing worth keeping.
		derr := g.discardGroup(ctx, gc, group.ID)
		return nil, errFailedState("", "Cinder put group %s in status error (deleted: %v)", group.ID, derr == nil)
	}
	return last, err
}

// waitGroupReady waits for a group to be available, mapping the failures.
func waitGroupReady(ctx context.Context, gc openstack.GroupCloud, id string) (*openstack.VolumeGroup, error) {
	last, err := gc.WaitGroup(ctx, id, func(x *openstack.VolumeGroup) bool { return x.Status == openstack.GroupAvailable })
	switch {
	case err == nil:
		return last, nil
	case openstack.KindOf(err) == openstack.KindErrorState:
		return nil, err
	case openstack.KindOf(err) == openstack.KindNotFound:
		return nil, errInProgress("group %s disappeared; retry", id)
	case openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil:
		return nil, errInProgress("group %s is still %s", id, statusOf(last))
	}
	return nil, StatusFromError(err, "waiting for group %s", id)
}

func statusOf(g *openstack.VolumeGroup) string {
	if g == nil {
		return "not ready"
	}
	return g.Status
}

// markCarrier writes the group snapshot id into the carrier group's
// description, the key DeleteVolumeGroupSnapshot finds it by once the
// group snapshot is gone.
func (g *GroupControllerServer) markCarrier(ctx context.Context, gc openstack.GroupCloud, groupID, gsID string) error {
	desc := g.ownerDescription() + groupSnapshotMark + gsID
	if err := gc.UpdateGroup(ctx, groupID, openstack.UpdateGroupOpts{Description: &desc}); err != nil {
		return StatusFromError(err, "recording group snapshot %s on group %s", gsID, groupID)
	}
	return nil
}

// releaseVolumes takes the source volumes out of the carrier group of an
// available group snapshot (no-op for a group that is not ours).
func (g *GroupControllerServer) releaseVolumes(ctx context.Context, gc openstack.GroupCloud, gs *openstack.GroupSnapshot) error {
	group, err := gc.GetGroup(ctx, gs.GroupID)
	if openstack.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return StatusFromError(err, "reading group %s", gs.GroupID)
	}
	if !g.owns(group.Description) {
		return nil
	}
	if !strings.Contains(group.Description, groupSnapshotMark+gs.ID) {
		if err := g.markCarrier(ctx, gc, group.ID, gs.ID); err != nil {
			return err
		}
	}
	return g.emptyGroup(ctx, gc, group.ID)
}

// emptyGroup removes every volume from a group and waits until it is done.
func (g *GroupControllerServer) emptyGroup(ctx context.Context, gc openstack.GroupCloud, groupID string) error {
	vols, err := gc.GroupVolumes(ctx, groupID)
	if err != nil {
		return StatusFromError(err, "listing the volumes of group %s", groupID)
	}
	if len(vols) == 0 {
		return nil
	}
	if _, err := waitGroupReady(ctx, gc, groupID); err != nil {
		return StatusFromError(err, "waiting for group %s", groupID)
	}
	if err := gc.UpdateGroup(ctx, groupID, openstack.UpdateGroupOpts{RemoveVolumes: vols}); err != nil {
		return StatusFromError(err, "removing volumes %v from group %s", vols, groupID)
	}
	klog.FromContext(ctx).Info("Released volumes from carrier group", "groupID", groupID, "volumeIDs", vols)
	if _, err := waitGroupReady(ctx, gc, groupID); err != nil {
		return StatusFromError(err, "waiting for group %s", groupID)
	}
	return nil
}

// deleteGroupSnapshot deletes gs, waits until it is gone, then deletes its
// carrier group when it is ours.
func (g *GroupControllerServer) deleteGroupSnapshot(ctx context.Context, gc openstack.GroupCloud, gs *openstack.GroupSnapshot) error {
	ours := g.owns(gs.Description)
	if ours {
		// Mark first: a crash after the group snapshot is gone must still
		// find the group.
		if grp, err := gc.GetGroup(ctx, gs.GroupID); err == nil && g.owns(grp.Description) && !strings.Contains(grp.Description, groupSnapshotMark+gs.ID) {
			if err := g.markCarrier(ctx, gc, grp.ID, gs.ID); err != nil {
				return err
			}
		}
	}
	if gs.Status != openstack.GroupSnapshotDeleting {
		if err := gc.DeleteGroupSnapshot(ctx, gs.ID); err != nil && !openstack.IsNotFound(err) {
			return StatusFromError(err, "deleting group snapshot %s", gs.ID)
		}
	}
	if _, err := gc.WaitGroupSnapshot(ctx, gs.ID, func(*openstack.GroupSnapshot) bool { return false }); err != nil && !openstack.IsNotFound(err) {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return errInProgress("group snapshot %s is still being deleted", gs.ID)
		}
		return StatusFromError(err, "waiting for group snapshot %s to be deleted", gs.ID)
	}
	if !ours {
		return nil
	}
	return g.discardGroup(ctx, gc, gs.GroupID)
}

// discardGroup empties and deletes one of our groups and waits until it
// is gone. A group that is not ours, or gone, is left alone.
func (g *GroupControllerServer) discardGroup(ctx context.Context, gc openstack.GroupCloud, groupID string) error {
	group, err := gc.GetGroup(ctx, groupID)
	if openstack.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return StatusFromError(err, "reading group %s", groupID)
	}
	if !g.owns(group.Description) {
		return nil
	}
	if group.Status != openstack.GroupDeleting {
		if err := g.emptyGroup(ctx, gc, groupID); err != nil {
			return err
		}
		if err := gc.DeleteGroup(ctx, groupID); err != nil && !openstack.IsNotFound(err) {
			return StatusFromError(err, "deleting group %s", groupID)
		}
	}
	if _, err := gc.WaitGroup(ctx, groupID, func(*openstack.VolumeGroup) bool { return false }); err != nil && !openstack.IsNotFound(err) {
		if openstack.KindOf(err) == openstack.KindTimeout || ctx.Err() != nil {
			return errInProgress("group %s is still being deleted", groupID)
		}
		return StatusFromError(err, "waiting for group %s to be deleted", groupID)
	}
	klog.FromContext(ctx).Info("Deleted carrier group", "groupID", groupID)
	return nil
}

// sweepCarrier deletes the carrier group a deleted group snapshot left
// behind (a crash between the two deletes).
func (g *GroupControllerServer) sweepCarrier(ctx context.Context, gc openstack.GroupCloud, gsID string) error {
	groups, err := gc.ListGroups(ctx)
	if err != nil {
		return StatusFromError(err, "listing groups for the carrier of group snapshot %s", gsID)
	}
	for _, grp := range groups {
		if g.owns(grp.Description) && strings.HasSuffix(grp.Description, groupSnapshotMark+gsID) {
			if err := g.discardGroup(ctx, gc, grp.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
