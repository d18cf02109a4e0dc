package cinder

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cinder-csi/cinder-csi/pkg/csi/capability"
	"github.com/cinder-csi/cinder-csi/pkg/version"
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
	csi.UnimplementedIdentityServer
	opts IdentityOptions
}

var _ csi.IdentityServer = (*IdentityServer)(nil)

// NewIdentityServer returns the identity service.
func NewIdentityServer(opts IdentityOptions) *IdentityServer {
	if opts.DriverName == "" {
		opts.DriverName = DefaultDriverName
	}
	if opts.Version == "" {
		opts.Version = version.Version
	}
	return &IdentityServer{opts: opts}
}

// GetPluginInfo returns the driver name and version.
func (ids *IdentityServer) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: ids.opts.DriverName, VendorVersion: ids.opts.Version}, nil
}

// Probe reports ready; see IdentityServer.
func (ids *IdentityServer) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
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
