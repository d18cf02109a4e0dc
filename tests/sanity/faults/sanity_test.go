// Package faults runs csi-sanity while the emulator fails 5% of the
// OpenStack API requests with 500, 503 or 429, then checks that the cloud
// holds no volume, snapshot, backup or attachment.
package faults

import (
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/sanity/harness"
)

// 5% of requests fail, a third each as 500, 503 and 429: ErrorRate picks
// 500 or 503 alike (3.4%), RateLimitRate applies to the rest (1.7% of
// 96.6%), 5.0% in all. Every service and path is affected, Keystone
// included.
func TestSanityWithFaults(t *testing.T) {
	harness.Run(t, harness.Options{Faults: emulator.Faults{ErrorRate: 0.034, RateLimitRate: 0.017}})
}
