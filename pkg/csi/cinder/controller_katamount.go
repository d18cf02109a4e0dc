package cinder

import (
	"context"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/kata/mountmode"
)

// kataMountFromPVC reads the PVC's cinder.csi.openstack.org/kata-mount
// annotation (direct-volume or host), once, at CreateVolume: the value goes
// into the volume context, so the node decides without a PVC lookup. It
// needs --pvc-annotations (the lookup) and the provisioner's
// --extra-create-metadata (the PVC's name). The PVC lookup is cached, so
// reading the scheduler hints afterwards costs no second API call.
//
// A bad value, a direct-volume demand against a StorageClass that opted
// out, and (peer-pod driver) a host demand are InvalidArgument before
// anything is created.
func (cs *ControllerServer) kataMountFromPVC(ctx context.Context, p *params.Volume) (string, error) {
	if !cs.opts.PVCAnnotations || p.PVCName == "" || p.PVCNamespace == "" {
		return "", nil
	}
	ann, err := cs.opts.PVCLookup.Annotations(ctx, p.PVCNamespace, p.PVCName)
	if err != nil {
		return "", errNotReady("reading annotations of PVC %s/%s: %v", p.PVCNamespace, p.PVCName, err)
	}
	v := ann[mountmode.Key]
	if err := mountmode.CheckClassAndPVC(p.KataDirectVolume, v); err != nil {
		return "", errInvalid("PVC %s/%s: %v", p.PVCNamespace, p.PVCName, err)
	}
	if cs.opts.PeerPods && v == mountmode.Host {
		return "", errInvalid("PVC %s/%s: %s=%s cannot be honoured by the peer-pod driver: the volume is attached to the pod's own VM, never mounted on the worker",
			p.PVCNamespace, p.PVCName, mountmode.Key, mountmode.Host)
	}
	return v, nil
}
