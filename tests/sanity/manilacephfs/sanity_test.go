// Package manilacephfs runs csi-sanity against the Manila driver, CEPHFS shares
// on the emulator.
package manilacephfs

import (
	"os"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
)

func TestMain(m *testing.M) { os.Exit(manilanodetest.RunInPrivateMountNamespace(m)) }

func TestSanityManilaCephFS(t *testing.T) {
	manilaharness.Run(t, manilaharness.Options{Protocol: "CEPHFS", ShareType: "cephfstype"})
}
