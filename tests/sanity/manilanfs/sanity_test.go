// Package manilanfs runs csi-sanity against the Manila driver, NFS shares
// on the emulator.
package manilanfs

import (
	"os"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/tests/sanity/manilaharness"
)

func TestMain(m *testing.M) { os.Exit(manilanodetest.RunInPrivateMountNamespace(m)) }

func TestSanityManilaNFS(t *testing.T) {
	manilaharness.Run(t, manilaharness.Options{Protocol: "NFS", ShareType: "cephfsnfstype"})
}
