package sanity

import (
	"testing"

	csisanity "github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// TestSanityOnRealCinder runs csi-sanity with mutable parameters: the
// ModifyVolume specs retype to a real volume type.
func TestSanityOnRealCinder(t *testing.T) {
	env := rig.Require(t)
	d := rig.StartDriver(t, env, "sanity", "")
	csisanity.Test(t, *Config(t, env, d, true))
}
