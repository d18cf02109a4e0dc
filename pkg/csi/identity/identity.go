// Package identity is the part of the CSI identity service both drivers
// answer alike: the plugin's name and version, and a Probe that makes no
// cloud call. Each driver adds its own GetPluginCapabilities.
package identity

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cinder-csi/cinder-csi/pkg/version"
)

// Base answers GetPluginInfo and Probe. Probe makes no cloud call: the
// kubelet's liveness probe would otherwise cost an OpenStack request per
// node every few seconds (reference issue #1903).
type Base struct {
	csi.UnimplementedIdentityServer
	name    string
	version string
}

// NewBase returns the identity of a plugin: name, or defaultName when it
// is empty, and ver, or pkg/version.Version when it is empty.
func NewBase(name, defaultName, ver string) Base {
	if name == "" {
		name = defaultName
	}
	if ver == "" {
		ver = version.Version
	}
	return Base{name: name, version: ver}
}

// GetPluginInfo returns the driver name and version.
func (b *Base) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: b.name, VendorVersion: b.version}, nil
}

// Probe reports ready; see Base.
func (b *Base) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}
