package manila

import (
	"context"
	"strings"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Manila's CephFS driver records how to mount a share in this metadata
// key (admin metadata since 2.68), e.g. "fs=cephfs".
const metaMountOptions = "__mount_options"

// prepareAccess sets up the access of a share that does not depend on a
// node and returns its volume context: for CephFS the volume's one cephx
// identity (waited until active with its key, and the key stored when
// delivered by Secret); for NFS with nfs-shareClient the class's rules.
// Per-node NFS rules are ControllerPublishVolume's.
func (cs *ControllerServer) prepareAccess(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, p *params.Volume) (*params.VolumeContext, error) {
	path, err := cs.exportLocation(ctx, c, share)
	if err != nil {
		return nil, err
	}
	vc := &params.VolumeContext{
		ShareID:        share.ID,
		Protocol:       canonicalProtocol(share.Protocol),
		ExportLocation: path,
		FSName:         fsNameOf(share),
	}
	f, err := c.ShareFeatures(ctx)
	if err != nil {
		return nil, StatusFromError(err, "reading Manila's microversions")
	}
	switch vc.Protocol {
	case params.ProtocolCephFS:
		vc.CephFS = p.CephFS
		vc.CephFS.ClientID = share.Metadata[MetaCephxClient]
		if vc.CephFS.ClientID == "" {
			vc.CephFS.ClientID = cephxClientID(p, share.Name)
		}
		if _, err := cs.ensureCephxAccess(ctx, c, share, vc.CephFS.ClientID, f); err != nil {
			return nil, err
		}
	case params.ProtocolNFS:
		vc.NFS = p.NFS
		for _, client := range p.NFS.ShareClients {
			meta := accessMetadata(f, map[string]string{MetaShareClient: "true"})
			if _, err := ensureRule(ctx, c, share.ID, openstack.AccessTypeIP, client, levelRW, meta); err != nil {
				return nil, err
			}
		}
	}
	return vc, nil
}

// ensureCephxAccess grants the volume's cephx identity (rw), waits until it
// is active with its key, and stores the key in the share's Secret when
// keys travel by Secret. It returns the active rule.
func (cs *ControllerServer) ensureCephxAccess(ctx context.Context, c openstack.ShareCloud, share *openstack.Share, clientID string, f openstack.ShareFeatures) (*openstack.AccessRule, error) {
	rule, err := ensureRule(ctx, c, share.ID, openstack.AccessTypeCephx, clientID, levelRW, accessMetadata(f, map[string]string{MetaCephxClient: clientID}))
	if err != nil {
		return nil, err
	}
	if rule.AccessKey == "" {
		return nil, errInProgress("the cephx rule %s of share %s is active but Manila has not issued its key yet; retry", rule.ID, share.ID)
	}
	if cs.opts.KeyDelivery != DeliverySecret {
		return rule, nil
	}
	ns, name, ok := secretRef(share)
	if !ok {
		return nil, errPrecondition("share %s has no %s metadata naming the Secret for its cephx key; it was not made by this driver with --cephx-key-delivery=secret (set the StorageClass secret or use publish-context delivery)", share.ID, MetaCephxSecret)
	}
	if err := cs.opts.Keys.Put(ctx, ns, name, map[string]string{"userID": clientID, "userKey": rule.AccessKey}); err != nil {
		// The message names the Secret, never the key.
		return nil, errNotReady("writing the cephx key of share %s to Secret %s/%s: %v", share.ID, ns, name, err)
	}
	return rule, nil
}

// secretRef returns the namespace and name of the share's key Secret.
func secretRef(share *openstack.Share) (ns, name string, ok bool) {
	ns, name, ok = strings.Cut(share.Metadata[MetaCephxSecret], "/")
	return ns, name, ok && ns != "" && name != ""
}

// exportLocation chooses the share's export path (see
// chooseExportLocation); none is FailedPrecondition naming why.
func (cs *ControllerServer) exportLocation(ctx context.Context, c openstack.ShareCloud, share *openstack.Share) (string, error) {
	locs, err := c.ListExportLocations(ctx, share.ID)
	if err != nil {
		return "", StatusFromError(err, "listing the export locations of share %s", share.ID)
	}
	path := chooseExportLocation(locs, canonicalProtocol(share.Protocol), cs.opts.Runtime)
	if path == "" {
		if len(locs) == 0 {
			return "", errInProgress("share %s has no export location yet; retry", share.ID)
		}
		return "", errPrecondition("none of the %d export locations of share %s is usable: admin-only, or outside nfs.matchExportLocationAddress of the runtime config", len(locs), share.ID)
	}
	return path, nil
}

// fsNameOf reads the CephFS file system name from __mount_options
// ("fs=cephfs" or the older "mds_namespace=cephfs"), or "".
func fsNameOf(share *openstack.Share) string {
	for _, opt := range strings.Split(share.Metadata[metaMountOptions], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if ok && (k == "fs" || k == "mds_namespace") {
			return v
		}
	}
	return ""
}

func canonicalProtocol(p string) string {
	if q, err := params.ParseProtocol("protocol", p); err == nil {
		return q
	}
	return strings.ToUpper(p)
}
