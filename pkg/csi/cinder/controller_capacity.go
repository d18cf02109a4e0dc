package cinder

import (
	"context"
	"math"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// GetCapacity reports what the project may still allocate: the gigabytes
// quota minus use and reservations, and, for a class with a volume type
// that has its own gigabytes_<type> quota, the smaller of the two. Cinder
// quotas are per project, not per zone, so every topology segment gets the
// same figure. An unlimited quota reports the largest int64. When reading
// quota usage is forbidden by policy, /limits gives the same totals.
func (cs *ControllerServer) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	p, err := params.ParseVolume(req.GetParameters())
	if err != nil {
		return nil, errInvalid("StorageClass parameters: %v", err)
	}
	if len(req.GetVolumeCapabilities()) > 0 {
		if _, problem := checkCaps(req.GetVolumeCapabilities()); problem != "" {
			// Capacity for a shape we cannot serve is none.
			return &csi.GetCapacityResponse{}, nil
		}
	}
	// The request carries no secrets: the first configured cloud ([Global]
	// when present) answers.
	c, err := cs.clouds.Get(cs.clouds.Names()[0])
	if err != nil {
		return nil, StatusFromError(err, "default cloud")
	}
	qs, err := c.GetQuotaSet(ctx)
	if openstack.KindOf(err) == openstack.KindForbidden {
		limits, lerr := c.GetLimits(ctx)
		if lerr != nil {
			return nil, StatusFromError(lerr, "reading Cinder limits")
		}
		return &csi.GetCapacityResponse{AvailableCapacity: freeGiB(limits.MaxTotalVolumeGigabytes, limits.TotalGigabytesUsed, 0)}, nil
	}
	if err != nil {
		return nil, StatusFromError(err, "reading Cinder quotas")
	}
	free := freeGiB(qs.Gigabytes.Limit, qs.Gigabytes.InUse, qs.Gigabytes.Reserved)
	if p.VolumeType != "" {
		if q, ok := qs.PerType[p.VolumeType]; ok {
			free = min(free, freeGiB(q.Limit, q.InUse, q.Reserved))
		}
	}
	return &csi.GetCapacityResponse{AvailableCapacity: free}, nil
}

// freeGiB turns a quota into free bytes; a negative limit is unlimited.
func freeGiB(limit, inUse, reserved int) int64 {
	if limit < 0 {
		return math.MaxInt64
	}
	return gibBytes(int64(limit) - int64(inUse) - int64(reserved))
}
