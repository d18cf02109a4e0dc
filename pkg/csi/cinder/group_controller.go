package cinder

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// GroupControllerServer is the CSI GroupController service: volume group
// snapshots as Cinder group snapshots. It shares the controller's clouds,
// options and in-flight guard.
//
// Cinder snapshots volumes together only when they are in one generic
// volume group, and a volume is in at most one group. So each
// CreateVolumeGroupSnapshot puts its source volumes in a group of its own
// (the carrier group, named like the request, group type from the class),
// takes the group snapshot, and takes the volumes out of the group again
// once the snapshot is available, so that they are free for the next
// group snapshot, a delete or a retype. The carrier group stays, empty,
// as long as the group snapshot (Cinder refuses to delete a group with
// group snapshots), and DeleteVolumeGroupSnapshot deletes both.
// docs/design.md, "Volume group snapshots", has the whole contract.
type GroupControllerServer struct {
	csi.UnimplementedGroupControllerServer
	cs *ControllerServer
}

var _ csi.GroupControllerServer = (*GroupControllerServer)(nil)

// NewGroupControllerServer returns the group controller service of cs.
func NewGroupControllerServer(cs *ControllerServer) *GroupControllerServer {
	return &GroupControllerServer{cs: cs}
}

// groupDescription marks the groups and group snapshots the driver makes:
// Cinder groups have no metadata, so ownership lives in the description.
const groupDescription = "Created by OpenStack Cinder CSI driver for a VolumeGroupSnapshot"

// groupSnapshotMark is appended to a carrier group's description once its
// group snapshot exists, so that a delete that lost the group snapshot
// still finds the group.
const groupSnapshotMark = "; group snapshot "

// ownerDescription is groupDescription scoped to the cluster.
func (g *GroupControllerServer) ownerDescription() string {
	if g.cs.opts.Cluster == "" {
		return groupDescription
	}
	return groupDescription + " (cluster " + g.cs.opts.Cluster + ")"
}

// GroupControllerGetCapabilities advertises create, delete and get.
func (g *GroupControllerServer) GroupControllerGetCapabilities(context.Context, *csi.GroupControllerGetCapabilitiesRequest) (*csi.GroupControllerGetCapabilitiesResponse, error) {
	return &csi.GroupControllerGetCapabilitiesResponse{Capabilities: []*csi.GroupControllerServiceCapability{{
		Type: &csi.GroupControllerServiceCapability_Rpc{Rpc: &csi.GroupControllerServiceCapability_RPC{
			Type: csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT}},
	}}}, nil
}

// groupCloudFor returns the cloud the secrets select with its group calls,
// or FailedPrecondition when the cloud has no group snapshots.
func (g *GroupControllerServer) groupCloudFor(secrets map[string]string) (openstack.Cloud, openstack.GroupCloud, error) {
	c, err := g.cs.cloudFor(secrets)
	if err != nil {
		return nil, nil, err
	}
	gc, ok := c.(openstack.GroupCloud)
	if !ok {
		return nil, nil, errPrecondition("this cloud connection has no Cinder group calls")
	}
	return c, gc, nil
}

// CreateVolumeGroupSnapshot snapshots the source volumes together.
//
// Idempotency key: the name, with our ownership description. A group
// snapshot of that name with other members is AlreadyExists. ReadyToUse is
// false until Cinder reports the group snapshot available; the snapshotter
// calls again (or GetVolumeGroupSnapshot) until it is true.
func (g *GroupControllerServer) CreateVolumeGroupSnapshot(ctx context.Context, req *csi.CreateVolumeGroupSnapshotRequest) (*csi.CreateVolumeGroupSnapshotResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, errInvalid("group snapshot name is required")
	}
	srcs := sortedUnique(req.GetSourceVolumeIds())
	if len(srcs) == 0 {
		return nil, errInvalid("source volume ids are required")
	}
	gp, err := params.ParseGroupSnapshot(req.GetParameters())
	if err != nil {
		return nil, errInvalid("VolumeGroupSnapshotClass parameters: %v", err)
	}
	release, ok := g.cs.inFlight.TryAcquire("group-snapshot-name/" + name)
	if !ok {
		return nil, errBusy("group snapshot", name)
	}
	defer release()
	c, gc, err := g.groupCloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if !c.Features().Groups {
		return nil, errPrecondition("Cinder offers microversion %s; volume group snapshots need 3.25 or later", c.Features().CinderMicroversion)
	}
	found, err := gc.FindGroupSnapshotsByName(ctx, name, g.ownerDescription())
	if err != nil {
		return nil, StatusFromError(err, "looking up group snapshot %q", name)
	}
	switch len(found) {
	case 0:
	case 1:
		return g.progress(ctx, c, gc, &found[0], srcs, false)
	default:
		return nil, errPrecondition("%d Cinder group snapshots are named %q; delete all but one", len(found), name)
	}
	group, err := g.carrierGroup(ctx, c, gc, name, srcs, gp)
	if err != nil {
		return nil, err
	}
	gs, err := gc.CreateGroupSnapshot(ctx, group.ID, name, g.ownerDescription())
	if err != nil {
		if refusedForGood(err) {
			// Over quota or refused: the volumes must not stay in a group
			// that may never be asked for again.
			if derr := g.discardGroup(ctx, gc, group.ID); derr != nil {
				klog.FromContext(ctx).Error(derr, "Deleting the carrier group of a refused group snapshot failed; a retry finds it by name", "groupID", group.ID)
			}
		}
		return nil, StatusFromError(err, "creating group snapshot %q of group %s", name, group.ID)
	}
	klog.FromContext(ctx).Info("Created group snapshot", "groupSnapshotID", gs.ID, "groupID", group.ID, "name", name, "volumeIDs", srcs)
	if err := g.markCarrier(ctx, gc, group.ID, gs.ID); err != nil {
		return nil, err
	}
	return g.progress(ctx, c, gc, gs, srcs, true)
}

// progress answers CreateVolumeGroupSnapshot for an existing group
// snapshot: a brief wait, the member check, the release of the source
// volumes once it is available, and the cleanup of one that failed.
func (g *GroupControllerServer) progress(ctx context.Context, c openstack.Cloud, gc openstack.GroupCloud, gs *openstack.GroupSnapshot, srcs []string, created bool) (*csi.CreateVolumeGroupSnapshotResponse, error) {
	gs, err := g.briefWait(ctx, gc, gs)
	if err != nil {
		return nil, err
	}
	members, err := gc.GroupSnapshotMembers(ctx, gs)
	if err != nil {
		return nil, StatusFromError(err, "listing the snapshots of group snapshot %s", gs.ID)
	}
	if have := memberVolumes(members); !slices.Equal(have, srcs) {
		return nil, errAlreadyExists("group snapshot %q already exists as %s of volumes %v, not of %v", gs.Name, gs.ID, have, srcs)
	}
	switch gs.Status {
	case openstack.GroupSnapshotError:
		return nil, g.failed(ctx, c, gc, gs, created)
	case openstack.GroupSnapshotAvailable:
		if err := g.releaseVolumes(ctx, gc, gs); err != nil {
			return nil, err
		}
	}
	return &csi.CreateVolumeGroupSnapshotResponse{GroupSnapshot: groupSnapshotEntry(gs, members)}, nil
}

// groupAnswerMargin is what briefWait leaves of the request's deadline for
// the member listing and the answer (a few Cinder calls, well under 1 s
// on the rig).
const groupAnswerMargin = 5 * time.Second

// briefWait gives Cinder until shortly before the request's deadline
// (SnapshotReadyWait when there is none). Not CreateSnapshot's 2 s:
// snapshot-controller v8.2-v8.3 creates the member VolumeSnapshots from
// the first answer that lists them and, when that answer is not ready,
// never completes the VolumeGroupSnapshot (its next pass fails on the
// members it already made: "binding volumesnapshot to
// volumesnapshotcontent resource name may not be empty"; seen on the rig,
// where the first answer came after 5 s with the group still creating).
// Answering once it is available avoids that; a deadline that runs out
// still answers not ready and the sidecar retries.
func (g *GroupControllerServer) briefWait(ctx context.Context, gc openstack.GroupCloud, gs *openstack.GroupSnapshot) (*openstack.GroupSnapshot, error) {
	wait := g.cs.opts.SnapshotReadyWait
	if dl, ok := ctx.Deadline(); ok {
		wait = max(wait, time.Until(dl)-groupAnswerMargin)
	}
	if gs.Status != openstack.GroupSnapshotCreating || wait <= 0 {
		return gs, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last, err := gc.WaitGroupSnapshot(wctx, gs.ID, func(x *openstack.GroupSnapshot) bool { return x.Status != openstack.GroupSnapshotCreating })
	if last == nil {
		last = gs
	}
	switch k := openstack.KindOf(err); {
	case err == nil, k == openstack.KindTimeout, k == openstack.KindErrorState, wctx.Err() != nil && ctx.Err() == nil:
		return last, nil
	case k == openstack.KindNotFound:
		return nil, errInProgress("group snapshot %s disappeared while it was being created; retry", gs.ID)
	}
	return nil, StatusFromError(err, "waiting for group snapshot %s", gs.ID)
}

// failed deletes a group snapshot Cinder put in error, with its carrier
// group, and reports it; a retry starts over.
func (g *GroupControllerServer) failed(ctx context.Context, c openstack.Cloud, gc openstack.GroupCloud, gs *openstack.GroupSnapshot, created bool) error {
	reason := latestReason(ctx, c, gs.ID)
	if err := g.deleteGroupSnapshot(ctx, gc, gs); err != nil {
		return errFailedState(reason, "Cinder put group snapshot %s in status error and deleting it failed (%v); retry or delete it by hand", gs.ID, err)
	}
	if created {
		return errFailedState(reason, "Cinder put group snapshot %s in status error; it was deleted", gs.ID)
	}
	return errFailedState(reason, "group snapshot %s named %q was in status error; it was deleted, retry to take it again", gs.ID, gs.Name)
}

func groupSnapshotEntry(gs *openstack.GroupSnapshot, members []openstack.Snapshot) *csi.VolumeGroupSnapshot {
	e := &csi.VolumeGroupSnapshot{GroupSnapshotId: gs.ID, ReadyToUse: gs.Status == openstack.GroupSnapshotAvailable}
	if !gs.CreatedAt.IsZero() {
		e.CreationTime = timestamppb.New(gs.CreatedAt)
	}
	for i := range members {
		s := snapshotEntry(&members[i])
		// A member is usable once the whole group snapshot is.
		s.ReadyToUse = e.ReadyToUse && s.ReadyToUse
		s.GroupSnapshotId = gs.ID
		e.Snapshots = append(e.Snapshots, s)
	}
	return e
}

// refusedForGood reports a create Cinder refused in a way a retry of the
// same request will not change soon.
func refusedForGood(err error) bool {
	switch openstack.KindOf(err) {
	case openstack.KindOverQuota, openstack.KindBadRequest, openstack.KindForbidden, openstack.KindConfig:
		return true
	}
	return false
}

func memberVolumes(members []openstack.Snapshot) []string {
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.VolumeID)
	}
	return sortedUnique(ids)
}

func sortedUnique(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// GetVolumeGroupSnapshot returns a group snapshot with its members
// (NotFound when there is none). The snapshotter polls here, so a group
// snapshot seen available gets its source volumes released.
func (g *GroupControllerServer) GetVolumeGroupSnapshot(ctx context.Context, req *csi.GetVolumeGroupSnapshotRequest) (*csi.GetVolumeGroupSnapshotResponse, error) {
	id := req.GetGroupSnapshotId()
	if id == "" {
		return nil, errInvalid("group snapshot id is required")
	}
	_, gc, err := g.groupCloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	gs, err := gc.GetGroupSnapshot(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("group snapshot %s not found", id)
	}
	if err != nil {
		return nil, StatusFromError(err, "reading group snapshot %s", id)
	}
	members, err := gc.GroupSnapshotMembers(ctx, gs)
	if err != nil {
		return nil, StatusFromError(err, "listing the snapshots of group snapshot %s", id)
	}
	if gs.Status == openstack.GroupSnapshotAvailable && g.owns(gs.Description) {
		if err := g.releaseVolumes(ctx, gc, gs); err != nil {
			return nil, err
		}
	}
	return &csi.GetVolumeGroupSnapshotResponse{GroupSnapshot: groupSnapshotEntry(gs, members)}, nil
}

// DeleteVolumeGroupSnapshot deletes the group snapshot, its member
// snapshots and, when the driver made it, its carrier group. Not found is
// success, after a last look for a carrier group the group snapshot left.
func (g *GroupControllerServer) DeleteVolumeGroupSnapshot(ctx context.Context, req *csi.DeleteVolumeGroupSnapshotRequest) (*csi.DeleteVolumeGroupSnapshotResponse, error) {
	id := req.GetGroupSnapshotId()
	if id == "" {
		return nil, errInvalid("group snapshot id is required")
	}
	release, ok := g.cs.inFlight.TryAcquire("group-snapshot/" + id)
	if !ok {
		return nil, errBusy("group snapshot", id)
	}
	defer release()
	_, gc, err := g.groupCloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	gs, err := gc.GetGroupSnapshot(ctx, id)
	if openstack.IsNotFound(err) {
		if err := g.sweepCarrier(ctx, gc, id); err != nil {
			return nil, err
		}
		return &csi.DeleteVolumeGroupSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "reading group snapshot %s", id)
	}
	if err := g.deleteGroupSnapshot(ctx, gc, gs); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).Info("Deleted group snapshot", "groupSnapshotID", id, "groupID", gs.GroupID)
	return &csi.DeleteVolumeGroupSnapshotResponse{}, nil
}
