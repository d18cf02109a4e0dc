// Package namedcloud runs csi-sanity against a [Global "second"] cloud that
// every request selects through its secrets (`cloud: second`).
package namedcloud

import (
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/sanity/harness"
)

func TestSanityNamedCloud(t *testing.T) {
	harness.Run(t, harness.Options{CloudName: "second"})
}
