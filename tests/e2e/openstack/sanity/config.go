// Package sanity runs the kubernetes-csi sanity suite (csi-test v5) against
// our driver on the openstack-rig's real Cinder and Nova, the node service
// using the devices the rig's compute driver hot-plugs. A spec that fails
// here but passes against the emulator (tests/sanity) means the emulator
// is wrong.
//
// The suite runs twice, as csi-sanity users run it: with
// --csi.testvolumemutableparameters (this package) and without
// (./withoutmutable: Ginkgo runs one suite per process). Config is what
// both share.
package sanity

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	csisanity "github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// Config returns the csi-sanity configuration for the driver d on the rig.
// With mutable, the ModifyVolume specs retype to a volume type made for
// the run (TestVolumeMutableParameters, csi-sanity's
// --csi.testvolumemutableparameters); without, they send empty mutable
// parameters.
func Config(t *testing.T, env *rig.Env, d *rig.Driver, mutable bool) *csisanity.TestConfig {
	cfg := csisanity.NewTestConfig()
	cfg.Address = d.Endpoint
	cfg.TargetPath = filepath.Join(d.Work, "target")
	cfg.StagingPath = filepath.Join(d.Work, "staging")
	cfg.TestVolumeSize = 1 << 30
	cfg.TestVolumeExpandSize = 2 << 30
	cfg.IdempotentCount = 2
	cfg.TestSnapshotParameters = map[string]string{"type": "snapshot", "force-create": "false"}
	cfg.IDGen = uuidGen{}
	if mutable {
		cfg.TestVolumeMutableParameters = map[string]string{"type": vacType(t, env)}
	}
	return &cfg
}

// vacType makes, as admin, the volume type the ModifyVolume specs retype
// to (no extra specs: the rig's one backend, so no migration), and removes
// it when the suite has deleted its volumes.
func vacType(t *testing.T, env *rig.Env) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := env.AdminLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "sanity-vac-" + newUUID()[:8]
	r, err := admin.Do(ctx, rig.Volume, "POST", "/types", "3.0", map[string]any{"volume_type": map[string]any{"name": name}})
	if err != nil || r.Status != 200 {
		t.Fatalf("creating volume type %s: %v %v", name, err, r)
	}
	id, _ := r.JSON()["volume_type"].(map[string]any)["id"].(string)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if r, err := admin.Do(ctx, rig.Volume, "DELETE", "/types/"+id, "3.0", nil); err != nil || r.Status != 202 {
			t.Errorf("deleting volume type %s: %v %v", name, err, r)
		}
	})
	return name
}

// uuidGen makes ids of Cinder's and Nova's shape, so "does not exist"
// specs reach the cloud and get its 404.
type uuidGen struct{}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (uuidGen) GenerateUniqueValidVolumeID() string { return newUUID() }
func (uuidGen) GenerateInvalidVolumeID() string     { return "not-a-cinder-volume-id" }
func (uuidGen) GenerateUniqueValidNodeID() string   { return newUUID() }
func (uuidGen) GenerateInvalidNodeID() string       { return "not-a-nova-server-id" }
