package manila

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// ControllerPublishVolume gives one node access to a share and returns
// what the node mounts with.
//
// NFS: an ip rule per address in the node id (rw, or ro for a read-only
// publish), marked with the node's name in the rule's metadata and waited
// for until active. With nfs-shareClient the class's rules already exist
// and nothing is added. CephFS: the volume's cephx identity is ensured
// (active, with key) and named in the publish context; the key travels in
// it only with --cephx-key-delivery=publish-context.
func (cs *ControllerServer) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	node, vc, err := cs.validatePublish(req.GetVolumeId(), req.GetNodeId(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	if req.GetVolumeCapability() == nil {
		return nil, errInvalid("volume_capability is required")
	}
	if problem := checkCaps([]*csi.VolumeCapability{req.GetVolumeCapability()}); problem != "" {
		return nil, errInvalid("volume capability: %s", problem)
	}
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	share, err := cs.shareForPublish(ctx, c, req.GetVolumeId(), vc)
	if err != nil {
		return nil, err
	}
	if err := cs.checkNodeExists(ctx, node); err != nil {
		return nil, err
	}
	unlock, err := cs.shareLocks.Lock(ctx, share.ID)
	if err != nil {
		return nil, errInProgress("waiting for another publish of share %s: %v", share.ID, err)
	}
	defer unlock()
	path := vc.ExportLocation
	if path == "" {
		if path, err = cs.exportLocation(ctx, c, share); err != nil {
			return nil, err
		}
	}
	pc := map[string]string{params.PubExportLocation: path}
	switch canonicalProtocol(share.Protocol) {
	case params.ProtocolNFS:
		err = cs.publishNFS(ctx, c, share, node, vc, req.GetReadonly())
	case params.ProtocolCephFS:
		err = cs.publishCephFS(ctx, c, share, vc, pc)
	default:
		err = errInvalid("share %s uses protocol %s; the driver serves NFS and CEPHFS", share.ID, share.Protocol)
	}
	if err != nil {
		return nil, err
	}
	klog.InfoS("Published share", "shareID", share.ID, "node", node.Name, "readonly", req.GetReadonly())
	return &csi.ControllerPublishVolumeResponse{PublishContext: pc}, nil
}

func (cs *ControllerServer) validatePublish(volumeID, nodeID string, volumeContext map[string]string) (nodeIdentity, *params.VolumeContext, error) {
	if volumeID == "" {
		return nodeIdentity{}, nil, errInvalid("volume_id is required")
	}
	node, problem := parseNodeID(nodeID)
	if problem != "" {
		return nodeIdentity{}, nil, errInvalid("%s", problem)
	}
	vc, err := params.ParseVolumeContext(volumeContext)
	if err != nil {
		return nodeIdentity{}, nil, errInvalid("volume context: %v", err)
	}
	return node, vc, nil
}

// shareForPublish finds the share: the volume context's shareID or
// shareName for a static PV, else the volume id.
func (cs *ControllerServer) shareForPublish(ctx context.Context, c openstack.ShareCloud, volumeID string, vc *params.VolumeContext) (*openstack.Share, error) {
	if vc.ShareName != "" {
		found, err := c.FindSharesByName(ctx, vc.ShareName, nil)
		if err != nil {
			return nil, StatusFromError(err, "looking up share %q", vc.ShareName)
		}
		switch len(found) {
		case 0:
			return nil, errNotFound("share %q (volume %s) not found", vc.ShareName, volumeID)
		case 1:
			return &found[0], nil
		}
		return nil, errPrecondition("%d shares are named %q; give the static PV a shareID", len(found), vc.ShareName)
	}
	id := volumeID
	if vc.ShareID != "" {
		id = vc.ShareID
	}
	share, err := c.GetShare(ctx, id)
	if openstack.IsNotFound(err) {
		return nil, errNotFound("volume %s: share %s not found", volumeID, id)
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up share %s", id)
	}
	if share.Status != openstack.ShareAvailable {
		return nil, errNotReady("share %s is %s, not available", share.ID, share.Status)
	}
	return share, nil
}

func (cs *ControllerServer) checkNodeExists(ctx context.Context, node nodeIdentity) error {
	if cs.opts.Nodes == nil {
		return nil
	}
	ok, err := cs.opts.Nodes.NodeExists(ctx, node.Name)
	if err != nil {
		return errNotReady("looking up node %s: %v", node.Name, err)
	}
	if !ok {
		return errNotFound("node %s not found (no CSINode of this driver)", node.Name)
	}
	return nil
}

func (cs *ControllerServer) publishNFS(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, node nodeIdentity, vc *params.VolumeContext, readonly bool) error {
	if len(vc.NFS.ShareClients) > 0 {
		return nil
	}
	if len(node.Addresses) == 0 {
		return errPrecondition("node %s reported no addresses in its node id, so no NFS access rule can name it; set --node-addresses on its node plugin, or nfs-shareClient in the StorageClass", node.Name)
	}
	f, err := c.ShareFeatures(ctx)
	if err != nil {
		return StatusFromError(err, "reading Manila's microversions")
	}
	if !f.AccessMetadata {
		return errPrecondition("Manila %s predates 2.45 access rule metadata, which marks per-node rules; use nfs-shareClient in the StorageClass", f.Microversion)
	}
	level := levelRW
	if readonly {
		level = levelRO
	}
	for _, addr := range node.Addresses {
		if _, err := ensureRule(ctx, c, share.ID, openstack.AccessTypeIP, addr, level, map[string]string{MetaNode: node.Name}); err != nil {
			return err
		}
	}
	return nil
}

func (cs *ControllerServer) publishCephFS(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, vc *params.VolumeContext, pc map[string]string) error {
	rule, err := cs.cephxRuleForPublish(ctx, c, share, vc)
	if err != nil {
		return err
	}
	pc[params.PubCephfsClientID] = rule.AccessTo
	if cs.opts.KeyDelivery == DeliveryPublishContext {
		pc[params.PubUserKey] = rule.AccessKey
	}
	return nil
}

// cephxRuleForPublish returns the active cephx rule of the volume: a static
// PV's shareAccessIDs, else the identity CreateVolume recorded (ensured
// again, so a rule someone revoked comes back).
func (cs *ControllerServer) cephxRuleForPublish(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, vc *params.VolumeContext) (*openstack.AccessRule, error) {
	if len(vc.ShareAccessIDs) > 0 {
		rules, err := c.ListAccessRules(ctx, share.ID)
		if err != nil {
			return nil, StatusFromError(err, "listing the access rules of share %s", share.ID)
		}
		for _, id := range vc.ShareAccessIDs {
			for _, r := range rules {
				if r.ID == id && r.AccessType == openstack.AccessTypeCephx {
					return c.WaitAccessRule(ctx, share.ID, r.ID)
				}
			}
		}
		return nil, errNotFound("share %s has no cephx rule among shareAccessIDs %v", share.ID, vc.ShareAccessIDs)
	}
	clientID := vc.CephFS.ClientID
	if clientID == "" {
		clientID = share.Metadata[MetaCephxClient]
	}
	if clientID == "" {
		return nil, errPrecondition("share %s names no cephx identity: give the static PV shareAccessIDs or cephfs-clientID", share.ID)
	}
	f, err := c.ShareFeatures(ctx)
	if err != nil {
		return nil, StatusFromError(err, "reading Manila's microversions")
	}
	if _, _, hasSecret := secretRef(share); !hasSecret && cs.opts.KeyDelivery == DeliverySecret {
		rule, err := ensureRule(ctx, c, share.ID, openstack.AccessTypeCephx, clientID, levelRW, accessMetadata(f, map[string]string{MetaCephxClient: clientID}))
		return rule, err
	}
	return cs.ensureCephxAccess(ctx, c, share, clientID, f)
}

// ControllerUnpublishVolume revokes the NFS rules this driver made for the
// node (marked with its name) and waits until they are gone. CephFS keeps
// its per-volume identity until DeleteVolume. A share already gone is
// success.
func (cs *ControllerServer) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, errInvalid("volume_id is required")
	}
	node, problem := parseNodeID(req.GetNodeId())
	if problem != "" {
		return nil, errInvalid("%s", problem)
	}
	c, err := cs.cloudFor(ctx, req.GetSecrets())
	if err != nil {
		return nil, err
	}
	share, err := c.GetShare(ctx, req.GetVolumeId())
	if openstack.IsNotFound(err) {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "looking up share %s", req.GetVolumeId())
	}
	unlock, err := cs.shareLocks.Lock(ctx, share.ID)
	if err != nil {
		return nil, errInProgress("waiting for another publish of share %s: %v", share.ID, err)
	}
	defer unlock()
	rules, err := c.ListAccessRules(ctx, share.ID)
	if err != nil {
		return nil, StatusFromError(err, "listing the access rules of share %s", share.ID)
	}
	var mine []openstack.AccessRule
	for _, r := range rules {
		if r.AccessType == openstack.AccessTypeIP && r.Metadata[MetaNode] == node.Name {
			mine = append(mine, r)
		}
	}
	if err := revokeRules(ctx, c, share.ID, mine); err != nil {
		return nil, err
	}
	klog.InfoS("Unpublished share", "shareID", share.ID, "node", node.Name, "rulesRevoked", len(mine))
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}
