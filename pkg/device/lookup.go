package device

import (
	"context"
	"errors"
	"fmt"
)

// Lookup makes one attempt to find the volume's device, without waiting,
// triggering udev or asking the metadata service: for health checks and
// ownership checks, which must answer at once. An ambiguous serial is
// ErrMismatch, anything else missing ErrNotFound.
func (f *Finder) Lookup(ctx context.Context, volumeID string) (*Device, error) {
	dev, err := f.findOnce(ctx, volumeID, "", false)
	if errors.Is(err, ErrMismatch) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: volume %s: %w", ErrNotFound, volumeID, err)
	}
	return dev, nil
}
