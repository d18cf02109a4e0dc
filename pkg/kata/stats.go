package kata

import (
	"context"
	"errors"
	"io/fs"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/kata/kataerr"
)

// Stats reports the guest's view through the Kata shim. Without a shim
// that answers it reports the device size: kubelet still sees the capacity,
// and Health says why usage is missing.
func (p *Publisher) Stats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	path := req.GetVolumePath()
	mi, err := p.store.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, kataerr.Errorf(kataerr.NotFound, "no Kata direct volume at %s", path)
	}
	if err != nil {
		return nil, kataerr.Errorf(kataerr.Internal, "reading the Kata record of %s: %w", path, err)
	}
	if id := mi.Metadata[MetaVolumeID]; req.GetVolumeId() != "" && id != req.GetVolumeId() {
		return nil, kataerr.Errorf(kataerr.NotFound, "%s holds volume %q, not %q", path, id, req.GetVolumeId())
	}
	st, err := p.guestStats(ctx, path, mi)
	if err == nil {
		return statsResponse(st), nil
	}
	klog.V(4).InfoS("Kata guest stats unavailable; reporting the device size", "path", path, "err", err)
	size, serr := deviceSize(mi.Device)
	if serr != nil {
		return nil, kataerr.Errorf(kataerr.NotFound, "device %s of the Kata direct volume at %s: %v", mi.Device, path, serr)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Total: size, Unit: csi.VolumeUsage_BYTES}}}, nil
}

func (p *Publisher) guestStats(ctx context.Context, path string, mi *MountInfo) (*VolumeStats, error) {
	ids, err := p.store.SandboxIDs(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	st, _, err := p.shim.stats(ctx, ids, mi.Device)
	return st, err
}

func statsResponse(st *VolumeStats) *csi.NodeGetVolumeStatsResponse {
	resp := &csi.NodeGetVolumeStatsResponse{}
	for _, u := range st.Usage {
		var unit csi.VolumeUsage_Unit
		switch u.Unit {
		case unitBytes:
			unit = csi.VolumeUsage_BYTES
		case unitInodes:
			unit = csi.VolumeUsage_INODES
		default:
			continue
		}
		resp.Usage = append(resp.Usage, &csi.VolumeUsage{
			Available: int64(u.Available), Total: int64(u.Total), Used: int64(u.Used), Unit: unit,
		})
	}
	return resp
}

// Health reasons of Kata direct volumes (CamelCase, as CSI asks).
const (
	HealthKataSandboxMissing   = "KataSandboxMissing"
	HealthKataGuestAbnormal    = "KataGuestAbnormal"
	HealthKataStatsUnavailable = "KataGuestStatsUnavailable"
)

// Health returns the volume-health entries of a Kata direct volume at
// publishPath (nil when no record is there or nothing is wrong). CSI 1.13
// moved the volume condition from NodeGetVolumeStats to
// NodeGetVolumeHealth; the node server adds these entries there.
func (p *Publisher) Health(ctx context.Context, volumeID, publishPath string) []*csi.VolumeHealth_VolumeHealthEntry {
	mi, err := p.store.Read(publishPath)
	if err != nil {
		return nil
	}
	if id := mi.Metadata[MetaVolumeID]; volumeID != "" && id != volumeID {
		return nil
	}
	st, err := p.guestStats(ctx, publishPath, mi)
	switch {
	case errors.Is(err, errNoLiveSandbox):
		return []*csi.VolumeHealth_VolumeHealthEntry{{
			Status: csi.VolumeHealthErrorType_DEGRADED,
			Reason: HealthKataSandboxMissing,
			Message: "no running Kata sandbox has taken this direct volume: the runtime ignored the record " +
				"(Go runtime: set disable_block_device_use=false), or the pod is not running yet; " +
				"runtime-rs never records its sandbox, so this is expected there",
		}}
	case err != nil:
		return []*csi.VolumeHealth_VolumeHealthEntry{{
			Status:  csi.VolumeHealthErrorType_UNKNOWN_VOLUME_HEALTH_TYPE,
			Reason:  HealthKataStatsUnavailable,
			Message: err.Error(),
		}}
	case st.Condition != nil && st.Condition.Abnormal:
		return []*csi.VolumeHealth_VolumeHealthEntry{{
			Status:  csi.VolumeHealthErrorType_DEGRADED,
			Reason:  HealthKataGuestAbnormal,
			Message: "Kata guest reports: " + st.Condition.Message,
		}}
	}
	return nil
}
