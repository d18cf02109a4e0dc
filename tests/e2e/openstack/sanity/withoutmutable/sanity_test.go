// Package withoutmutable runs csi-sanity on the rig without
// --csi.testvolumemutableparameters: the ModifyVolume specs send empty
// mutable parameters, which the driver answers as a no-op after checking
// that the volume exists (docs/design.md, ControllerModifyVolume). A
// separate package because Ginkgo runs one suite per process.
package withoutmutable

import (
	"testing"

	csisanity "github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/sanity"
)

func TestSanityOnRealCinderWithoutMutableParameters(t *testing.T) {
	env := rig.Require(t)
	d := rig.StartDriver(t, env, "sanity-nomutable", "")
	csisanity.Test(t, *sanity.Config(t, env, d, false))
}
