package cinder

import (
	"math"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

const gib = int64(1) << 30

// maxVolumeGiB is the largest size Cinder accepts: its API schema caps a
// volume's "size" and an extend's "new_size" at DB_MAX_INT, 0x7FFFFFFF
// (cinder/api/validation/parameter_types.py and common/constants.py in
// Zed, read on the openstack-rig). A request above it is refused here, so
// that Cinder never sees an overflowed or negative size.
const maxVolumeGiB = int64(math.MaxInt32)

// roundUpGiB returns the whole GiB that hold b bytes (b >= 0). It divides
// first, so b near MaxInt64 does not overflow as (b + gib - 1) / gib does.
func roundUpGiB(b int64) int64 {
	n := b / gib
	if b%gib != 0 {
		n++
	}
	return n
}

// gibBytes returns n GiB in bytes, saturating at MaxInt64 (and 0 for a
// negative n) instead of wrapping: a size read from the cloud is not
// trusted to fit.
func gibBytes(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n > math.MaxInt64/gib:
		return math.MaxInt64
	}
	return n * gib
}

// sizeFromRange turns a capacity range into whole GiB: the required bytes
// rounded up, the default when unset, and OutOfRange when limit_bytes
// cannot hold that or it exceeds the largest volume Cinder makes.
func sizeFromRange(r *csi.CapacityRange, defaultGiB int) (sizeGiB int, required, limit int64, err error) {
	required, limit = r.GetRequiredBytes(), r.GetLimitBytes()
	if required < 0 || limit < 0 {
		return 0, 0, 0, errInvalid("capacity range must not be negative (required_bytes %d, limit_bytes %d)", required, limit)
	}
	if limit > 0 && required > limit {
		return 0, 0, 0, errInvalid("capacity range required_bytes %d exceeds limit_bytes %d", required, limit)
	}
	size := int64(defaultGiB)
	if required > 0 {
		size = roundUpGiB(required)
	}
	if size > maxVolumeGiB {
		if required > 0 {
			return 0, 0, 0, errOutOfRange("required_bytes %d rounds up to %d GiB, more than the largest volume Cinder accepts (%d GiB)", required, size, maxVolumeGiB)
		}
		return 0, 0, 0, errOutOfRange("the default volume size %d GiB is more than the largest volume Cinder accepts (%d GiB)", size, maxVolumeGiB)
	}
	if limit > 0 && gibBytes(size) > limit {
		if required > 0 {
			return 0, 0, 0, errOutOfRange("Cinder allocates whole GiB: required_bytes %d rounds up to %d GiB, which exceeds limit_bytes %d", required, size, limit)
		}
		return 0, 0, 0, errOutOfRange("limit_bytes %d is below the smallest volume Cinder can make (%d GiB)", limit, size)
	}
	return int(size), required, limit, nil
}
