// Package defaultcloud runs csi-sanity against the [Global] cloud.
package defaultcloud

import (
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/sanity/harness"
)

func TestSanityDefaultCloud(t *testing.T) {
	harness.Run(t, harness.Options{})
}
