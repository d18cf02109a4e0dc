package cinder

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/csi/identity"
)

// IdentityOptions configure the identity service.
type IdentityOptions struct {
	// DriverName is reported by GetPluginInfo (--driver-name).
	DriverName string
	// Version defaults to pkg/version.Version.
	Version string
	// WithTopology advertises VOLUME_ACCESSIBILITY_CONSTRAINTS (--with-topology).
	WithTopology bool
	// ProvidesController advertises CONTROLLER_SERVICE; a node-only pod
	// must not (--provide-controller-service).
	ProvidesController bool
	// ProvidesGroupController advertises GROUP_CONTROLLER_SERVICE (volume
	// group snapshots); set with ProvidesController.
	ProvidesGroupController bool
}

// IdentityServer is the CSI identity service. Probe makes no cloud call:
// the kubelet's liveness probe would otherwise cost an OpenStack request
// per node every few seconds (reference issue #1903).
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
// online and offline expansion, and topology when enabled.
func (ids *IdentityServer) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	var caps []*csi.PluginCapability
	if ids.opts.ProvidesController {
		caps = append(caps, capability.Service(csi.PluginCapability_Service_CONTROLLER_SERVICE))
	}
	if ids.opts.ProvidesGroupController {
		caps = append(caps, capability.Service(csi.PluginCapability_Service_GROUP_CONTROLLER_SERVICE))
	}
	if ids.opts.WithTopology {
		caps = append(caps, capability.Service(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS))
	}
	caps = append(caps,
		capability.Expansion(csi.PluginCapability_VolumeExpansion_ONLINE),
		capability.Expansion(csi.PluginCapability_VolumeExpansion_OFFLINE))
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}
