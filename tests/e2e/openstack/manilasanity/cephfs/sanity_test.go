// Package cephfs runs csi-sanity for Manila CephFS shares on the rig's real Manila.
package cephfs

import (
	"os"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/manilasanity"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
)

func TestMain(m *testing.M) { os.Exit(manilanodetest.RunInPrivateMountNamespace(m)) }

func TestSanityManilaCephFSOnRealManila(t *testing.T) {
	manilasanity.Run(t, manilaharness.Options{Protocol: "CEPHFS", ShareType: "cephfstype"})
}
