package device

import (
	"context"
	"fmt"
)

// Lookup makes one attempt to find the volume's device, without waiting or
// triggering udev: for health checks, which must answer at once.
func (f *Finder) Lookup(ctx context.Context, volumeID string) (*Device, error) {
	dev, err := f.findOnce(ctx, volumeID, "")
	if err != nil {
		return nil, fmt.Errorf("%w: volume %s: %w", ErrNotFound, volumeID, err)
	}
	return dev, nil
}
