package manila

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/csi/identity"
)

// IdentityOptions configure the identity service.
type IdentityOptions struct {
	DriverName         string // --drivername
	Version            string // defaults to pkg/version.Version
	WithTopology       bool   // --with-topology
	ProvidesController bool   // --provide-controller-service
}

// IdentityServer is the CSI identity service. Probe makes no cloud call,
// so a kubelet liveness probe never costs an OpenStack request.
type IdentityServer struct {
	identity.Base
	opts IdentityOptions
}

var _ csi.IdentityServer = (*IdentityServer)(nil)

// NewIdentityServer returns the identity service.
func NewIdentityServer(opts IdentityOptions) *IdentityServer {
	return &IdentityServer{Base: identity.NewBase(opts.DriverName, DefaultDriverName, opts.Version), opts: opts}
}

// GetPluginCapabilities advertises the controller service (when served),
// topology when enabled, and online expansion: a share grows under its
// mounts and the node has nothing to do.
func (ids *IdentityServer) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	var caps []*csi.PluginCapability
	if ids.opts.ProvidesController {
		caps = append(caps, capability.Service(csi.PluginCapability_Service_CONTROLLER_SERVICE))
	}
	if ids.opts.WithTopology {
		caps = append(caps, capability.Service(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS))
	}
	caps = append(caps, capability.Expansion(csi.PluginCapability_VolumeExpansion_ONLINE))
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}
