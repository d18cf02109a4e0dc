package cinder

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Volume capability rules, shared by CreateVolume, ControllerPublish and
// ValidateVolumeCapabilities:
//
//   - every single-node mode is fine with block or mount access
//     (SINGLE_NODE_MULTI_WRITER is what ReadWriteOncePod needs advertised);
//   - MULTI_NODE_* only with block access, on a multiattach volume type: a
//     plain filesystem mounted on two nodes is corrupted, and Cinder only
//     attaches a volume twice when its type says multiattach.

// checkCaps checks caps against the rules above. It returns whether any
// capability asks for a MULTI_NODE_* mode, or the problem with them ("" when
// there is none). Callers decide the code: CreateVolume and publish answer
// InvalidArgument, ValidateVolumeCapabilities answers "not confirmed".
func checkCaps(caps []*csi.VolumeCapability) (multi bool, problem string) {
	if len(caps) == 0 {
		return false, "volume capabilities are required"
	}
	for i, c := range caps {
		if c == nil {
			return false, fmt.Sprintf("volume capability %d is empty", i)
		}
		block, mount := c.GetBlock() != nil, c.GetMount() != nil
		if block == mount {
			return false, fmt.Sprintf("volume capability %d must set exactly one of block or mount access", i)
		}
		mode := c.GetAccessMode().GetMode()
		switch mode {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		case csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
			if !block {
				return false, fmt.Sprintf("access mode %s needs block access (volumeMode: Block): a filesystem mounted on several nodes would be corrupted", mode)
			}
			multi = true
		default:
			return false, fmt.Sprintf("volume capability %d has unsupported access mode %s", i, mode)
		}
	}
	return multi, ""
}

// checkTypeMultiattach verifies that a volume type allows multiattach, for a
// CreateVolume asking for MULTI_NODE_* modes. It is the only extra API call
// that request makes, and only that request.
func checkTypeMultiattach(ctx context.Context, c openstack.Cloud, volumeType string) error {
	if volumeType == "" {
		return errInvalid("MULTI_NODE access modes need a StorageClass `type` whose volume type has multiattach=\"<is> True\"")
	}
	vt, err := c.GetVolumeType(ctx, volumeType)
	if err != nil {
		if openstack.IsNotFound(err) {
			return errInvalid("volume type %q does not exist", volumeType)
		}
		return StatusFromError(err, "reading volume type %q", volumeType)
	}
	if !vt.Multiattach {
		return errInvalid("MULTI_NODE access modes need a multiattach volume type; type %q has no multiattach=\"<is> True\" extra spec", volumeType)
	}
	return nil
}

// capsProblemWithVolume is ValidateVolumeCapabilities' check against an
// existing volume: "" when compatible, otherwise the reason.
func capsProblemWithVolume(caps []*csi.VolumeCapability, v *openstack.Volume) string {
	multi, problem := checkCaps(caps)
	if problem != "" {
		return problem
	}
	if multi && !v.Multiattach {
		return fmt.Sprintf("volume %s is not multiattach; MULTI_NODE access modes need a multiattach volume type", v.ID)
	}
	return ""
}

// isBlock reports whether a capability asks for raw block access.
func isBlock(c *csi.VolumeCapability) bool { return c.GetBlock() != nil }
