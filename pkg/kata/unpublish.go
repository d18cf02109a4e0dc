package kata

// Unpublish: the device taken back from Kata and staging restored.

import (
	"context"
	"errors"
	"io/fs"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
)

// Unpublish takes the device back from Kata: restore staging from the
// stored details first, then remove the record, then the target. A crash
// between steps converges: staging mounted twice is detected, a missing
// record makes the node server's normal unpublish remove the empty target.
func (p *Publisher) Unpublish(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target := req.GetTargetPath()
	if target == "" {
		return nil, kataerr.Errorf(kataerr.Invalid, "target path missing")
	}
	mi, err := p.store.Read(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Already removed by an earlier attempt.
	case err != nil:
		return nil, kataerr.Errorf(kataerr.Internal, "reading the Kata record of %s: %w", target, err)
	default:
		if id := mi.Metadata[MetaVolumeID]; id != "" && id != req.GetVolumeId() {
			// Another volume's publication: unpublishing it would take
			// its device from a running guest (issue 16).
			return nil, kataerr.Errorf(kataerr.Precondition,
				"the Kata direct-volume record at %s is volume %s, not %q; refusing to unpublish it", target, id, req.GetVolumeId())
		}
		if err := p.restoreStaging(mi); err != nil {
			return nil, err
		}
		if err := p.step(stepStagingRemount); err != nil {
			return nil, err
		}
		if err := p.store.Remove(target); err != nil {
			return nil, kataerr.Errorf(kataerr.Internal, "removing the Kata record of %s: %w", target, err)
		}
		if err := p.step(stepRecordRemoved); err != nil {
			return nil, err
		}
	}
	if m, err := p.host.mountAt(target); err != nil {
		return nil, kataerr.Errorf(kataerr.Internal, "reading the mount table to check target %s: %w", target, err)
	} else if m != nil {
		if err := p.host.unmount(target); err != nil {
			return nil, kataerr.Errorf(kataerr.Internal, "unmounting %s: %w", target, err)
		}
	}
	if err := removeDir(target); err != nil {
		// Only a runtime that ignored the record (Go runtime with
		// disable_block_device_use=true) lets the container write here.
		// Never delete that data.
		return nil, kataerr.Errorf(kataerr.Precondition,
			"removing target %s: %v; files in it were written on the host because the Kata runtime ignored the direct-volume record", target, err)
	}
	klog.InfoS("Unpublished Kata direct volume", "volumeID", req.GetVolumeId(), "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// restoreStaging mounts the device back at staging with a typed mount (no
// mkfs, no fsck), unless it already is mounted there.
func (p *Publisher) restoreStaging(mi *MountInfo) error {
	staging := mi.Metadata[MetaStagingPath]
	if staging == "" {
		klog.InfoS("Kata record carries no staging path; nothing to restore", "device", mi.Device)
		return nil
	}
	dev, err := blockDevice(mi.Device)
	if errors.Is(err, fs.ErrNotExist) {
		// The volume is gone from the node (detached behind our back);
		// there is nothing to mount and the data stays in Cinder.
		klog.InfoS("Device of Kata record is gone; not restoring staging", "device", mi.Device, "staging", staging)
		return nil
	}
	if err != nil {
		return kataerr.Errorf(kataerr.Internal, "device of the Kata record: %w", err)
	}
	m, err := p.host.mountAt(staging)
	if err != nil {
		return kataerr.Errorf(kataerr.Internal, "reading the mount table to check staging %s before restoring it: %w", staging, err)
	}
	if m != nil {
		if mountedDevice(m) != dev {
			return kataerr.Errorf(kataerr.Precondition, "staging %s mounts device %s, not %s", staging, mountedDevice(m), mi.Device)
		}
		return nil
	}
	opts, err := unmarshalOptions(mi.Metadata[MetaStageOptions])
	if err != nil {
		return kataerr.Errorf(kataerr.Internal, "reading the stored mount options of staging %s: %w", staging, err)
	}
	fstype := mi.Metadata[MetaStageFSType]
	if fstype == "" {
		fstype = mi.FsType
	}
	if err := p.host.typedMount(mi.Device, staging, fstype, opts); err != nil {
		return kataerr.Errorf(kataerr.Internal, "restoring staging mount %s of %s: %w", staging, mi.Device, err)
	}
	return nil
}
