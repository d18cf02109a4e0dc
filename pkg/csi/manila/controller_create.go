package manila

import (
	"context"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// cephxSecretPrefix names the Secret holding a volume's cephx key:
// manila-cephx-<pv name>, which the StorageClass's
// csi.storage.k8s.io/node-stage-secret-name: manila-cephx-${pv.name} finds.
const cephxSecretPrefix = "manila-cephx-"

// createShare creates the share the request describes. For a clone it
// first takes (or finds) the intermediate snapshot of the source.
func (cs *ControllerServer) createShare(ctx context.Context, c openstack.ShareCloud, cr *createRequest) (*openstack.Share, error) {
	p := cr.params
	opts := openstack.CreateShareOpts{
		Name:           cr.name,
		Description:    shareDescription,
		Protocol:       cr.protocol,
		SizeGiB:        cr.sizeGiB,
		ShareType:      p.ShareType,
		ShareNetworkID: p.ShareNetworkID,
		ShareGroupID:   p.GroupID,
		Metadata:       cs.shareMetadata(cr),
	}
	if opts.AvailabilityZone = p.Availability; opts.AvailabilityZone == "" && p.AutoTopology && cs.opts.WithTopology {
		opts.AvailabilityZone = zoneFromRequirements(cr.requirements)
	}
	if err := cs.addAnnotationHints(ctx, c, p, &opts); err != nil {
		return nil, err
	}
	switch {
	case cr.snapshotID != "":
		if err := cs.fromSnapshot(ctx, c, cr, &opts); err != nil {
			return nil, err
		}
	case cr.sourceShare != "":
		if err := cs.fromShare(ctx, c, cr, &opts); err != nil {
			return nil, err
		}
	}
	share, err := c.CreateShare(ctx, opts)
	if err != nil {
		return nil, StatusFromError(err, "creating share %q (%d GiB, %s, type %q)", cr.name, opts.SizeGiB, cr.protocol, opts.ShareType)
	}
	klog.InfoS("Created share", "volumeName", cr.name, "shareID", share.ID, "sizeGiB", opts.SizeGiB, "protocol", cr.protocol, "snapshotID", opts.SnapshotID)
	return share, nil
}

// shareMetadata is what a new share carries: ownership, the class's
// appendShareMetadata, the Kubernetes names, and where its cephx
// identity and key live.
func (cs *ControllerServer) shareMetadata(cr *createRequest) map[string]string {
	p := cr.params
	meta := map[string]string{}
	for k, v := range p.AppendMetadata {
		meta[k] = v
	}
	for k, v := range cs.ownerMeta() {
		meta[k] = v
	}
	for k, v := range map[string]string{metaPVCName: p.PVCName, metaPVCNamespace: p.PVCNamespace, metaPVName: p.PVName, MetaCloneSource: cr.sourceShare} {
		if v != "" {
			meta[k] = v
		}
	}
	if cr.protocol == params.ProtocolCephFS {
		meta[MetaCephxClient] = cephxClientID(p, cr.name)
		if cs.opts.KeyDelivery == DeliverySecret {
			meta[MetaCephxSecret] = cs.secretNamespace(p) + "/" + cephxSecretPrefix + pvName(p, cr.name)
		}
	}
	return meta
}

func cephxClientID(p *params.Volume, volumeName string) string {
	if p.CephFS.ClientID != "" {
		return p.CephFS.ClientID
	}
	return volumeName
}

func pvName(p *params.Volume, volumeName string) string {
	if p.PVName != "" {
		return p.PVName
	}
	return volumeName
}

func (cs *ControllerServer) secretNamespace(p *params.Volume) string {
	if p.SecretNamespace != "" {
		return p.SecretNamespace
	}
	if cs.opts.Keys != nil {
		return cs.opts.Keys.DefaultNamespace()
	}
	return ""
}

// fromSnapshot checks the source snapshot and makes the share at least
// its size.
func (cs *ControllerServer) fromSnapshot(ctx context.Context, c openstack.ShareCloud, cr *createRequest, opts *openstack.CreateShareOpts) error {
	snap, err := c.GetShareSnapshot(ctx, cr.snapshotID)
	if openstack.IsNotFound(err) {
		return errNotFound("source snapshot %s not found", cr.snapshotID)
	}
	if err != nil {
		return StatusFromError(err, "looking up source snapshot %s", cr.snapshotID)
	}
	if snap.Status != openstack.ShareSnapshotAvailable {
		return errNotReady("source snapshot %s is %s, not available", snap.ID, snap.Status)
	}
	return cs.sizeForSource(cr, opts, snap.SizeGiB, "snapshot "+snap.ID, snap.ID)
}

// fromShare takes the intermediate snapshot of a clone's source share. Its
// name derives from the request name, so a retry after a crash finds it
// instead of taking another.
func (cs *ControllerServer) fromShare(ctx context.Context, c openstack.ShareCloud, cr *createRequest, opts *openstack.CreateShareOpts) error {
	src, err := c.GetShare(ctx, cr.sourceShare)
	if openstack.IsNotFound(err) {
		return errNotFound("source volume %s not found", cr.sourceShare)
	}
	if err != nil {
		return StatusFromError(err, "looking up source volume %s", cr.sourceShare)
	}
	if src.Status != openstack.ShareAvailable {
		return errNotReady("source volume %s is %s, not available", src.ID, src.Status)
	}
	if !strings.EqualFold(src.Protocol, cr.protocol) {
		return errInvalid("source volume %s is a %s share; this class makes %s shares", src.ID, src.Protocol, cr.protocol)
	}
	snap, err := cs.ensureCloneSnapshot(ctx, c, cr.name, src.ID)
	if err != nil {
		return err
	}
	return cs.sizeForSource(cr, opts, src.SizeGiB, "volume "+src.ID, snap.ID)
}

func (cs *ControllerServer) sizeForSource(cr *createRequest, opts *openstack.CreateShareOpts, sourceGiB int, what, snapshotID string) error {
	if sourceGiB > opts.SizeGiB {
		if cr.limitGiB > 0 && sourceGiB > cr.limitGiB {
			return errOutOfRange("source %s is %d GiB, above the requested limit of %d GiB", what, sourceGiB, cr.limitGiB)
		}
		opts.SizeGiB = sourceGiB
	}
	opts.SnapshotID = snapshotID
	// Manila makes a share from a snapshot on the source's backend, in its
	// zone, with its share type unless the class names one.
	if cr.params.Availability == "" {
		opts.AvailabilityZone = ""
	}
	return nil
}

// cloneSnapshotName is the intermediate snapshot of a clone.
func cloneSnapshotName(volumeName string) string { return "csi-clone-" + volumeName }

func (cs *ControllerServer) ensureCloneSnapshot(ctx context.Context, c openstack.ShareCloud, volumeName, sourceID string) (*openstack.ShareSnapshot, error) {
	name := cloneSnapshotName(volumeName)
	found, err := c.FindShareSnapshotsByName(ctx, name)
	if err != nil {
		return nil, StatusFromError(err, "looking up the clone snapshot %q", name)
	}
	var snap *openstack.ShareSnapshot
	for i := range found {
		if found[i].ShareID == sourceID {
			snap = &found[i]
		}
	}
	if snap == nil {
		snap, err = c.CreateShareSnapshot(ctx, openstack.CreateShareSnapshotOpts{
			Name: name, Description: "Intermediate snapshot of a Manila CSI clone; deleted once the clone exists", ShareID: sourceID,
		})
		if err != nil {
			return nil, StatusFromError(err, "taking the clone snapshot of volume %s", sourceID)
		}
		klog.InfoS("Took clone snapshot", "volumeName", volumeName, "sourceShareID", sourceID, "snapshotID", snap.ID)
	}
	snap, err = c.WaitShareSnapshot(ctx, snap.ID, func(s *openstack.ShareSnapshot) bool { return s.Status != openstack.ShareSnapshotCreating })
	if reason, failed := errorStateReason(err); failed {
		_ = c.DeleteShareSnapshot(ctx, snap.ID)
		return nil, errFailedState(reason, "the clone snapshot of volume %s went to error and was deleted", sourceID)
	}
	if err != nil {
		return nil, StatusFromError(err, "waiting for the clone snapshot of volume %s", sourceID)
	}
	if snap.Status != openstack.ShareSnapshotAvailable {
		return nil, errInProgress("the clone snapshot %s of volume %s is %s; retry later", snap.ID, sourceID, snap.Status)
	}
	return snap, nil
}

// dropCloneSnapshot deletes a clone's intermediate snapshot once the clone
// exists, and waits until it is gone, so a finished CreateVolume leaves
// nothing behind. DeleteVolume calls it too, for a clone whose
// CreateVolume never finished.
func (cs *ControllerServer) dropCloneSnapshot(ctx context.Context, c openstack.ShareCloud, volumeName string) error {
	found, err := c.FindShareSnapshotsByName(ctx, cloneSnapshotName(volumeName))
	if err != nil {
		return StatusFromError(err, "looking up the clone snapshot of %q", volumeName)
	}
	for _, s := range found {
		if s.Status != openstack.ShareSnapshotDeleting {
			if err := c.DeleteShareSnapshot(ctx, s.ID); err != nil && !openstack.IsNotFound(err) {
				return StatusFromError(err, "deleting the clone snapshot %s", s.ID)
			}
		}
		if err := c.WaitShareSnapshotGone(ctx, s.ID); err != nil && !openstack.IsNotFound(err) {
			return StatusFromError(err, "waiting for the clone snapshot %s to be deleted", s.ID)
		}
	}
	return nil
}

// zoneFromRequirements picks the first preferred zone, else the first
// requisite one (autoTopology with WaitForFirstConsumer).
func zoneFromRequirements(tr *csi.TopologyRequirement) string {
	for _, list := range [][]*csi.Topology{tr.GetPreferred(), tr.GetRequisite()} {
		for _, t := range list {
			if z := t.GetSegments()[TopologyKey]; z != "" {
				return z
			}
		}
	}
	return ""
}

// addAnnotationHints reads the PVC's affinity, anti-affinity and group
// annotations (--pvc-annotations). Hints need 2.65; on an older Manila
// they are dropped with a log line rather than failing the create.
func (cs *ControllerServer) addAnnotationHints(ctx context.Context, c openstack.ShareCloud, p *params.Volume, opts *openstack.CreateShareOpts) error {
	if !cs.opts.PVCAnnotations || p.PVCName == "" || p.PVCNamespace == "" {
		return nil
	}
	ann, err := cs.opts.PVCLookup.Annotations(ctx, p.PVCNamespace, p.PVCName)
	if err != nil {
		return errNotReady("reading the annotations of PVC %s/%s: %v", p.PVCNamespace, p.PVCName, err)
	}
	if g := strings.TrimSpace(ann[AnnotationGroupID]); g != "" && opts.ShareGroupID == "" {
		opts.ShareGroupID = g
	}
	same, different := splitList(ann[AnnotationAffinity]), splitList(ann[AnnotationAntiAffinity])
	if len(same)+len(different) == 0 {
		return nil
	}
	f, err := c.ShareFeatures(ctx)
	if err != nil {
		return StatusFromError(err, "reading Manila's microversions")
	}
	if !f.SchedulerHints {
		klog.InfoS("Manila is older than 2.65: ignoring the PVC's affinity annotations", "pvc", p.PVCNamespace+"/"+p.PVCName)
		return nil
	}
	opts.SameHost, opts.DifferentHost = same, different
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
