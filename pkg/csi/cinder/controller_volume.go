package cinder

import (
	"context"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// volumeRequest is a validated CreateVolume request.
type volumeRequest struct {
	name          string
	params        *params.Volume
	sizeGiB       int
	requiredBytes int64
	limitBytes    int64
	multiattach   bool
	// Content source: snapshotID may name a Cinder snapshot or a backup.
	snapshotID     string
	sourceVolumeID string
	// kataMount is the PVC's kata-mount annotation, for the volume context.
	kataMount string
}

// CreateVolume creates a Cinder volume and returns once it is available.
//
// Idempotency key: the name plus our cluster metadata. A volume already
// there is checked against the request (AlreadyExists on a mismatch) and
// waited for; one in error is reported, never silently reused. A create
// that cannot finish within the deadline answers Aborted and leaves the
// volume for the provisioner's retry to find by name.
func (cs *ControllerServer) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	vr, err := cs.validateCreateVolume(req)
	if err != nil {
		return nil, err
	}
	release, ok := cs.inFlight.TryAcquire("volume-name/" + vr.name)
	if !ok {
		return nil, errBusy("volume", vr.name)
	}
	defer release()
	if vr.kataMount, err = cs.kataMountFromPVC(ctx, vr.params); err != nil {
		return nil, err
	}

	c, err := cs.cloudFor(req.GetSecrets())
	if err != nil {
		return nil, err
	}
	if vr.multiattach {
		if err := checkTypeMultiattach(ctx, c, vr.params.VolumeType); err != nil {
			return nil, err
		}
	}
	existing, err := c.FindVolumesByName(ctx, vr.name, cs.lookupMeta())
	if err != nil {
		return nil, StatusFromError(err, "looking up volume %q", vr.name)
	}
	switch len(existing) {
	case 0:
		return cs.createNewVolume(ctx, c, req, vr)
	case 1:
		return cs.adoptExistingVolume(ctx, c, req, vr, &existing[0])
	default:
		ids := make([]string, 0, len(existing))
		for _, v := range existing {
			ids = append(ids, v.ID)
		}
		return nil, errPrecondition("%d Cinder volumes are named %q with this cluster's metadata (%s); delete all but one", len(existing), vr.name, strings.Join(ids, ", "))
	}
}

func (cs *ControllerServer) validateCreateVolume(req *csi.CreateVolumeRequest) (*volumeRequest, error) {
	vr := &volumeRequest{name: req.GetName()}
	if vr.name == "" {
		return nil, errInvalid("volume name is required")
	}
	multi, problem := checkCaps(req.GetVolumeCapabilities())
	if problem != "" {
		return nil, errInvalid("%s", problem)
	}
	vr.multiattach = multi
	p, err := params.ParseVolume(req.GetParameters())
	if err != nil {
		return nil, errInvalid("StorageClass parameters: %v", err)
	}
	if mp := req.GetMutableParameters(); len(mp) > 0 {
		// A VolumeAttributesClass given at creation is the volume's
		// desired state: its type wins over the StorageClass's.
		m, err := params.ParseMutable(mp)
		if err != nil {
			return nil, errInvalid("VolumeAttributesClass parameters: %v", err)
		}
		p.VolumeType = m.VolumeType
	}
	vr.params = p
	if vr.sizeGiB, vr.requiredBytes, vr.limitBytes, err = sizeFromRange(req.GetCapacityRange(), cs.opts.DefaultVolumeSizeGiB); err != nil {
		return nil, err
	}
	if src := req.GetVolumeContentSource(); src != nil {
		switch {
		case src.GetSnapshot() != nil:
			if vr.snapshotID = src.GetSnapshot().GetSnapshotId(); vr.snapshotID == "" {
				return nil, errInvalid("volume content source snapshot has no id")
			}
			if err := checkID("volume content source snapshot", vr.snapshotID); err != nil {
				return nil, err
			}
		case src.GetVolume() != nil:
			if vr.sourceVolumeID = src.GetVolume().GetVolumeId(); vr.sourceVolumeID == "" {
				return nil, errInvalid("volume content source volume has no id")
			}
			if err := checkID("volume content source volume", vr.sourceVolumeID); err != nil {
				return nil, err
			}
		default:
			return nil, errInvalid("unsupported volume content source type")
		}
	}
	return vr, nil
}

func (cs *ControllerServer) createNewVolume(ctx context.Context, c openstack.Cloud, req *csi.CreateVolumeRequest, vr *volumeRequest) (*csi.CreateVolumeResponse, error) {
	logger := klog.FromContext(ctx)
	opts := openstack.CreateVolumeOpts{
		Name:        vr.name,
		Description: volumeDescription,
		SizeGiB:     vr.sizeGiB,
		VolumeType:  vr.params.VolumeType,
		Metadata:    cs.volumeMetadata(vr.params),
	}
	resize, err := cs.resolveSource(ctx, c, vr, &opts)
	if err != nil {
		return nil, err
	}
	opts.AvailabilityZone = cs.pickAZ(vr, req.GetAccessibilityRequirements())
	volumeContext, err := cs.applySchedulerHints(ctx, c, vr.params, &opts)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	vol, err := c.CreateVolume(ctx, opts)
	if err != nil {
		vol = cs.adoptAfterAmbiguousCreate(ctx, c, vr.name, err)
		if vol == nil && unknownVolumeType(ctx, c, err, opts.VolumeType) {
			// Real Cinder answers 404 "Volume type with name X could not
			// be found."; CSI keeps NotFound for a missing source, and
			// the class parameter is what is wrong.
			return nil, errInvalid("creating volume %q: StorageClass parameter type=%q: %v", vr.name, opts.VolumeType, err)
		}
		if vol == nil {
			return nil, StatusFromError(err, "creating volume %q", vr.name)
		}
	}
	vol, err = cs.waitCreated(ctx, c, vol)
	server.RecordTiming(ctx, "waitVolumeAvailable", time.Since(start))
	if err != nil {
		return nil, err
	}
	if isVolumeErrorStatus(vol.Status) {
		return nil, cs.discardFailedVolume(ctx, c, vol)
	}
	logger.Info("Created volume", "volumeID", vol.ID, "name", vr.name, "sizeGiB", vol.SizeGiB, "type", vol.VolumeType, "az", vol.AvailabilityZone, "took", time.Since(start))
	return cs.createVolumeResponse(req, vr, vol, resize, volumeContext), nil
}

// unknownVolumeType reports whether a create failed because Cinder does
// not know the requested volume type. A create's 404 may also be a source
// that vanished since resolveSource read it, so the type is looked up
// (one call, on this error path only) rather than Cinder's message read.
func unknownVolumeType(ctx context.Context, c openstack.Cloud, err error, volumeType string) bool {
	if volumeType == "" || openstack.KindOf(err) != openstack.KindNotFound {
		return false
	}
	_, terr := c.GetVolumeType(ctx, volumeType)
	return openstack.IsNotFound(terr)
}

// adoptAfterAmbiguousCreate handles a create whose answer we did not get
// (5xx, reset, rate limit after the retries): Cinder may have made the
// volume anyway. One lookup by name adopts it instead of orphaning it.
func (cs *ControllerServer) adoptAfterAmbiguousCreate(ctx context.Context, c openstack.Cloud, name string, createErr error) *openstack.Volume {
	switch openstack.KindOf(createErr) {
	case openstack.KindUnavailable, openstack.KindRateLimited, openstack.KindUnknown:
	default:
		return nil
	}
	if ctx.Err() != nil {
		return nil // the provisioner's retry will find it by name
	}
	found, err := c.FindVolumesByName(ctx, name, cs.lookupMeta())
	if err != nil || len(found) != 1 {
		return nil
	}
	return &found[0]
}

// waitCreated waits until a volume leaves creating/downloading. On the
// deadline it answers Aborted: the volume stays and the retry finds it.
func (cs *ControllerServer) waitCreated(ctx context.Context, c openstack.Cloud, vol *openstack.Volume) (*openstack.Volume, error) {
	if !volumeBusyCreating(vol.Status) {
		return vol, nil
	}
	last, err := c.WaitVolume(ctx, vol.ID, func(v *openstack.Volume) bool { return !volumeBusyCreating(v.Status) })
	if last != nil && isVolumeErrorStatus(last.Status) {
		return last, nil
	}
	if err != nil {
		if k := openstack.KindOf(err); k == openstack.KindTimeout || ctx.Err() != nil {
			status := vol.Status
			if last != nil {
				status = last.Status
			}
			return nil, errInProgress("volume %s is still %s in Cinder; the request will find it by name when retried", vol.ID, status)
		}
		return nil, StatusFromError(err, "waiting for volume %s", vol.ID)
	}
	return last, nil
}

func volumeBusyCreating(status string) bool {
	return status == openstack.VolumeCreating || status == openstack.VolumeDownloading
}

// discardFailedVolume deletes a volume this call created that went to
// error, and reports Cinder's reason.
func (cs *ControllerServer) discardFailedVolume(ctx context.Context, c openstack.Cloud, vol *openstack.Volume) error {
	reason := latestReason(ctx, c, vol.ID)
	if err := c.DeleteVolume(ctx, vol.ID); err != nil && !openstack.IsNotFound(err) {
		return errFailedState(reason, "volume %s went to status %s and deleting it failed (%v); delete it by hand", vol.ID, vol.Status, err)
	}
	klog.FromContext(ctx).Info("Deleted volume that went to error", "volumeID", vol.ID, "name", vol.Name, "reason", reason)
	return errFailedState(reason, "Cinder put volume %s in status %s; it was deleted", vol.ID, vol.Status)
}

// adoptExistingVolume answers a retried or repeated CreateVolume from the
// volume found by name.
func (cs *ControllerServer) adoptExistingVolume(ctx context.Context, c openstack.Cloud, req *csi.CreateVolumeRequest, vr *volumeRequest, vol *openstack.Volume) (*csi.CreateVolumeResponse, error) {
	if problem := mismatch(vr, vol); problem != "" {
		return nil, errAlreadyExists("volume %q already exists as %s but %s", vr.name, vol.ID, problem)
	}
	switch {
	case vol.Status == openstack.VolumeDeleting:
		return nil, errInProgress("volume %s named %q is being deleted; retry to create it again", vol.ID, vr.name)
	case isVolumeErrorStatus(vol.Status):
		reason := latestReason(ctx, c, vol.ID)
		return nil, errPrecondition("volume %s named %q is in status %s%s; delete it so that it can be created again", vol.ID, vr.name, vol.Status, reasonSuffix(reason))
	}
	vol, err := cs.waitCreated(ctx, c, vol)
	if err != nil {
		return nil, err
	}
	if isVolumeErrorStatus(vol.Status) {
		reason := latestReason(ctx, c, vol.ID)
		return nil, errPrecondition("volume %s named %q went to status %s%s; delete it so that it can be created again", vol.ID, vr.name, vol.Status, reasonSuffix(reason))
	}
	// A retry reports resizeRequired for any content source (the node
	// checks whether the filesystem really needs to grow) and no affinity
	// echo: the hints only mattered when the volume was placed.
	return cs.createVolumeResponse(req, vr, vol, vr.snapshotID != "" || vr.sourceVolumeID != "", nil), nil
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// mismatch returns how an existing volume differs from the request, or "".
func mismatch(vr *volumeRequest, vol *openstack.Volume) string {
	size := gibBytes(int64(vol.SizeGiB))
	if size < vr.requiredBytes || (vr.limitBytes > 0 && size > vr.limitBytes) || (vr.requiredBytes == 0 && vol.SizeGiB != vr.sizeGiB) {
		return "its size differs"
	}
	// A type given by id cannot be compared with the name Cinder reports
	// without another call; the name is what classes normally use.
	if t := vr.params.VolumeType; t != "" && !looksLikeID(t) && vol.VolumeType != t {
		return "its volume type differs"
	}
	switch {
	case vr.snapshotID != "":
		if (vol.SnapshotID != "" && vol.SnapshotID != vr.snapshotID) || (vol.BackupID != "" && vol.BackupID != vr.snapshotID) || vol.SourceVolumeID != "" {
			return "its content source differs"
		}
	case vr.sourceVolumeID != "":
		if vol.SourceVolumeID != vr.sourceVolumeID {
			return "its content source differs"
		}
	default:
		if vol.SnapshotID != "" || vol.SourceVolumeID != "" || vol.BackupID != "" {
			return "it has a content source and the request has none"
		}
	}
	return ""
}

// resolveSource checks the content source and fills opts. It returns
// whether the new volume is larger than its source, so NodeStage grows the
// filesystem.
func (cs *ControllerServer) resolveSource(ctx context.Context, c openstack.Cloud, vr *volumeRequest, opts *openstack.CreateVolumeOpts) (bool, error) {
	var srcGiB int
	switch {
	case vr.snapshotID != "":
		snap, err := c.GetSnapshot(ctx, vr.snapshotID)
		switch {
		case err == nil:
			if snap.Status != openstack.SnapshotAvailable {
				return false, errNotReady("source snapshot %s is %s, not available", snap.ID, snap.Status)
			}
			opts.SnapshotID, srcGiB = snap.ID, snap.SizeGiB
		case openstack.IsNotFound(err):
			// A VolumeSnapshot of type backup carries the backup's id.
			b, berr := c.GetBackup(ctx, vr.snapshotID)
			if openstack.IsNotFound(berr) {
				return false, errNotFound("source snapshot %s not found (neither a Cinder snapshot nor a backup)", vr.snapshotID)
			}
			if berr != nil {
				return false, StatusFromError(berr, "reading source backup %s", vr.snapshotID)
			}
			if b.Status != openstack.BackupAvailable {
				return false, errNotReady("source backup %s is %s, not available", b.ID, b.Status)
			}
			if !c.Features().CreateFromBackup {
				return false, errPrecondition("restoring backup %s needs Cinder microversion 3.47, which this cloud does not offer", b.ID)
			}
			opts.BackupID, srcGiB = b.ID, b.SizeGiB
		default:
			return false, StatusFromError(err, "reading source snapshot %s", vr.snapshotID)
		}
	case vr.sourceVolumeID != "":
		src, err := c.GetVolume(ctx, vr.sourceVolumeID)
		if openstack.IsNotFound(err) {
			return false, errNotFound("source volume %s not found", vr.sourceVolumeID)
		}
		if err != nil {
			return false, StatusFromError(err, "reading source volume %s", vr.sourceVolumeID)
		}
		if src.Status != openstack.VolumeAvailable && src.Status != openstack.VolumeInUse {
			return false, errNotReady("source volume %s is %s; it can be cloned when available or in-use", src.ID, src.Status)
		}
		opts.SourceVolumeID, srcGiB = src.ID, src.SizeGiB
	default:
		return false, nil
	}
	if vr.sizeGiB < srcGiB {
		if vr.limitBytes > 0 && gibBytes(int64(srcGiB)) > vr.limitBytes {
			return false, errOutOfRange("the source is %d GiB, more than limit_bytes %d", srcGiB, vr.limitBytes)
		}
		// Cinder cannot shrink; the request's size is a minimum.
		vr.sizeGiB = srcGiB
		opts.SizeGiB = srcGiB
	}
	return vr.sizeGiB > srcGiB, nil
}

// pickAZ chooses the Cinder AZ: the class's `availability` wins; a restore
// or clone stays with its source (Cinder refuses another AZ, reference
// issue #1945); otherwise the first preferred, then requisite, zone.
func (cs *ControllerServer) pickAZ(vr *volumeRequest, reqs *csi.TopologyRequirement) string {
	if vr.params.Availability != "" {
		return vr.params.Availability
	}
	if !cs.opts.WithTopology || vr.snapshotID != "" || vr.sourceVolumeID != "" {
		return ""
	}
	for _, list := range [][]*csi.Topology{reqs.GetPreferred(), reqs.GetRequisite()} {
		for _, t := range list {
			if zone := t.GetSegments()[TopologyKey]; zone != "" {
				return zone
			}
		}
	}
	return ""
}

// volumeMetadata is the metadata written on a new volume.
func (cs *ControllerServer) volumeMetadata(p *params.Volume) map[string]string {
	m := map[string]string{}
	if cs.opts.Cluster != "" {
		m[openstack.MetaCluster] = cs.opts.Cluster
	}
	if cs.opts.CopyCreateMetadata {
		for k, v := range map[string]string{metaPVCName: p.PVCName, metaPVCNamespace: p.PVCNamespace, metaPVName: p.PVName} {
			if v != "" {
				m[k] = v
			}
		}
	}
	return m
}

// lookupMeta scopes by-name lookups to our cluster when one is set.
func (cs *ControllerServer) lookupMeta() map[string]string {
	if cs.opts.Cluster == "" {
		return nil
	}
	return cs.ownerMeta()
}

// applySchedulerHints turns the PVC's affinity annotations into Cinder
// scheduler hints and returns them for the volume context.
func (cs *ControllerServer) applySchedulerHints(ctx context.Context, c openstack.Cloud, p *params.Volume, opts *openstack.CreateVolumeOpts) (map[string]string, error) {
	if !cs.opts.PVCAnnotations || p.PVCName == "" || p.PVCNamespace == "" {
		return nil, nil
	}
	ann, err := cs.opts.PVCLookup.Annotations(ctx, p.PVCNamespace, p.PVCName)
	if err != nil {
		return nil, errNotReady("reading annotations of PVC %s/%s: %v", p.PVCNamespace, p.PVCName, err)
	}
	vctx := map[string]string{}
	if v := ann[AnnotationAffinity]; v != "" {
		if opts.SameHost, err = resolveVolumeRefs(ctx, c, AnnotationAffinity, v); err != nil {
			return nil, err
		}
		vctx[volumeContextAffinity] = v
	}
	if v := ann[AnnotationAntiAffinity]; v != "" {
		if opts.DifferentHost, err = resolveVolumeRefs(ctx, c, AnnotationAntiAffinity, v); err != nil {
			return nil, err
		}
		vctx[volumeContextAntiAffinity] = v
	}
	return vctx, nil
}

// resolveVolumeRefs turns a comma list of volume ids or names into ids.
func resolveVolumeRefs(ctx context.Context, c openstack.Cloud, annotation, list string) ([]string, error) {
	var ids []string
	for _, ref := range strings.Split(list, ",") {
		if ref = strings.TrimSpace(ref); ref == "" {
			continue
		}
		if looksLikeID(ref) {
			ids = append(ids, ref)
			continue
		}
		found, err := c.FindVolumesByName(ctx, ref, nil)
		if err != nil {
			return nil, StatusFromError(err, "resolving volume %q of PVC annotation %s", ref, annotation)
		}
		if len(found) != 1 {
			return nil, errInvalid("PVC annotation %s names volume %q, which matches %d volumes; use the volume id", annotation, ref, len(found))
		}
		ids = append(ids, found[0].ID)
	}
	return ids, nil
}

func (cs *ControllerServer) createVolumeResponse(req *csi.CreateVolumeRequest, vr *volumeRequest, vol *openstack.Volume, resize bool, extraContext map[string]string) *csi.CreateVolumeResponse {
	vctx := map[string]string{}
	if resize {
		vctx[VolumeContextResizeRequired] = "true"
	}
	if vr.params.KataDirectVolume != "" {
		vctx[params.KeyKataDirectVolume] = vr.params.KataDirectVolume
	}
	if vr.kataMount != "" {
		vctx[mountmode.VolumeContextKey] = vr.kataMount
	}
	for k, v := range extraContext {
		vctx[k] = v
	}
	if len(vctx) == 0 {
		vctx = nil
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:           vol.ID,
		CapacityBytes:      gibBytes(int64(vol.SizeGiB)),
		VolumeContext:      vctx,
		ContentSource:      req.GetVolumeContentSource(),
		AccessibleTopology: cs.accessibleTopology(vol, req.GetAccessibilityRequirements()),
	}}
}

// accessibleTopology reports the created volume's AZ: Cinder's
// allow_availability_zone_fallback may have put it elsewhere than asked.
func (cs *ControllerServer) accessibleTopology(vol *openstack.Volume, reqs *csi.TopologyRequirement) []*csi.Topology {
	if !cs.opts.WithTopology {
		return nil
	}
	if cs.opts.IgnoreVolumeAZ {
		if p := reqs.GetPreferred(); len(p) > 0 {
			return p
		}
		return reqs.GetRequisite()
	}
	if vol.AvailabilityZone == "" {
		return nil
	}
	return []*csi.Topology{{Segments: map[string]string{TopologyKey: vol.AvailabilityZone}}}
}
