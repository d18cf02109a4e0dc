package peerpod

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Controller is the Cinder controller with the peer-pod rules: volumes are
// ReadWriteOncePod filesystems, never attached through ControllerPublish
// (the CSIDriver has attachRequired: false; the Reconciler attaches to the
// pod VM), and expanded only while no pod VM holds them.
type Controller struct {
	*cinder.ControllerServer
	cloud Cloud
}

// NewController wraps the Cinder controller.
func NewController(cs *cinder.ControllerServer, c Cloud) *Controller {
	return &Controller{ControllerServer: cs, cloud: c}
}

// checkCaps refuses anything but a ReadWriteOncePod filesystem: the disk
// goes to one pod VM, whose agent mounts it.
func checkCaps(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return errInvalid("volume capabilities are required")
	}
	for i, c := range caps {
		if c.GetMount() == nil {
			return errInvalid("volume capability %d: peer-pod volumes need volumeMode: Filesystem (the pod VM's agent mounts the disk)", i)
		}
		if m := c.GetAccessMode().GetMode(); m != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
			return errInvalid("volume capability %d: peer-pod volumes need accessModes [ReadWriteOncePod], got %s: one pod VM at a time", i, m)
		}
	}
	return nil
}

// CreateVolume checks the capabilities, then creates as the Cinder driver.
func (c *Controller) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if err := checkCaps(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	return c.ControllerServer.CreateVolume(ctx, req)
}

// ControllerGetCapabilities drops publish/unpublish: nothing attaches to
// the worker.
func (c *Controller) ControllerGetCapabilities(ctx context.Context, req *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	resp, err := c.ControllerServer.ControllerGetCapabilities(ctx, req)
	if err != nil {
		return nil, err
	}
	kept := resp.Capabilities[:0]
	for _, cp := range resp.Capabilities {
		switch cp.GetRpc().GetType() {
		case csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME, csi.ControllerServiceCapability_RPC_PUBLISH_READONLY:
			continue
		}
		kept = append(kept, cp)
	}
	resp.Capabilities = kept
	return resp, nil
}

// ControllerPublishVolume is refused: it would attach to the worker.
func (c *Controller) ControllerPublishVolume(context.Context, *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	return nil, errPrecondition("the peer-pod driver %s attaches volumes to pod VMs, never to a node: its CSIDriver must have attachRequired: false", DriverName)
}

// ControllerUnpublishVolume is refused for the same reason.
func (c *Controller) ControllerUnpublishVolume(context.Context, *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	return nil, errPrecondition("the peer-pod driver %s attaches volumes to pod VMs, never to a node: its CSIDriver must have attachRequired: false", DriverName)
}

// ControllerExpandVolume grows an available volume (offline expansion);
// one a pod VM holds is refused: the guest would see a bigger disk but no
// one can grow its filesystem there (cloud-api-adaptor's agent does not
// resize). The filesystem is grown when the pod VM's agent next mounts it,
// where that agent resizes, so no node expansion is asked for.
func (c *Controller) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if vc := req.GetVolumeCapability(); vc != nil {
		if err := checkCaps([]*csi.VolumeCapability{vc}); err != nil {
			return nil, err
		}
	}
	vol, err := c.cloud.GetVolume(ctx, req.GetVolumeId())
	if err == nil && len(vol.Attachments) > 0 {
		return nil, errPrecondition("volume %s is attached to pod VM %s: peer-pod volumes expand offline only; delete the pod and the expansion proceeds",
			vol.ID, vol.Attachments[0].ServerID)
	}
	if err != nil && !openstack.IsNotFound(err) {
		return nil, fromCloud(err, "reading volume %s", req.GetVolumeId())
	}
	resp, err := c.ControllerServer.ControllerExpandVolume(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.NodeExpansionRequired = false
	return resp, nil
}
