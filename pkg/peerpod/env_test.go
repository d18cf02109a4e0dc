package peerpod

import (
	"context"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

const (
	workerID = "0f3c2a44-1b7e-4d0a-9c61-5a2b3c4d5e01"
	testAZ   = "nova"
)

// env is the emulator (real gophercloud HTTP), the Cinder controller over
// it, and an attacher using that controller.
type env struct {
	t     *testing.T
	emu   *emulator.Emulator
	cloud openstack.Cloud
	cs    *cinder.ControllerServer
	att   *Attacher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu, err := emulator.Start(emulator.Options{
		Servers:           []emulator.ServerSpec{{ID: workerID, Name: "worker-1", AZ: testAZ}},
		AvailabilityZones: []string{testAZ},
	})
	if err != nil {
		t.Fatalf("starting emulator: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	cfg, _, err := config.Parse("cloud.conf", []byte(emu.CloudConf("Global", "demo")))
	if err != nil {
		t.Fatal(err)
	}
	clouds, err := openstack.NewCloudsFromConfig(cfg, openstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	co := cinder.DefaultControllerOptions()
	co.Cluster = "peerpod-test"
	co.PeerPods = true
	cs, err := cinder.NewControllerServer(clouds, co)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clouds.Get("")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, emu: emu, cloud: c, cs: cs, att: NewAttacher(c, cs, &Locator{})}
}

func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

var rwopCaps = []*csi.VolumeCapability{rwopMount}

func (e *env) volume(name string) string {
	e.t.Helper()
	resp, err := NewController(e.cs, e.cloud).CreateVolume(e.ctx(30*time.Second), &csi.CreateVolumeRequest{
		Name: name, VolumeCapabilities: rwopCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}})
	if err != nil {
		e.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return resp.Volume.VolumeId
}

// podVM registers the pod's VM as cloud-api-adaptor would name it, booting
// (BUILD) or ACTIVE.
func (e *env) podVM(pod PodRef, sandbox string, booting bool) string {
	id := "9a1c2b3d-0000-4000-8000-" + sandbox[:8] + "0000"
	spec := emulator.ServerSpec{ID: id, Name: InstanceName(pod.Name, sandbox), AZ: testAZ}
	if booting {
		e.emu.AddBootingServer(spec)
	} else {
		e.emu.AddServer(spec)
	}
	return id
}

// attachments is every Cinder attachment of the volume.
func (e *env) attachments(volID string) []openstack.VolumeAttachment {
	e.t.Helper()
	v, err := e.cloud.GetVolume(context.Background(), volID)
	if err != nil {
		e.t.Fatalf("GetVolume %s: %v", volID, err)
	}
	return v.Attachments
}

// emuAttachments counts the emulator's own records for the volume (any
// status), which the Cinder view (completed only) could hide.
func (e *env) emuAttachments(volID string) int {
	n := 0
	for _, a := range e.emu.Attachments() {
		if a.VolumeID == volID {
			n++
		}
	}
	return n
}

// step records how long a step took, for the report (go test -v).
func (e *env) step(name string, start time.Time) {
	e.t.Logf("step %-44s %8.3fs", name, time.Since(start).Seconds())
}
