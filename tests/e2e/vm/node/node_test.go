// Package node runs the Cinder node scenarios with cinder-csi-plugin in a
// vm-rig guest (a real kernel, hot-plugged virtio-blk disks) and the
// controller and the emulator on the host (VM hot-plug mode): each way of
// finding the device, ext4 and XFS, online ext4 growth after a real
// capacity change, raw block, Kata direct-volume records and a plugin
// killed in the middle of a stage. Gated by CINDER_CSI_E2E_VM (make
// e2e-vm); the log lists which discovery path served each scenario.
package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/e2e/vm/vmenv"
)

// timeBox bounds the whole package: boot ~6-40 s, each scenario 5-20 s
// under TCG on a loaded 2-core host.
const (
	timeBox     = 8 * time.Minute
	scenarioBox = 2 * time.Minute
)

type suite struct {
	*vmenv.Env
	t      *testing.T
	ctx    context.Context
	report []string
}

func TestNodeInGuest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	s := &suite{Env: vmenv.Start(t), t: t, ctx: ctx}
	if err := s.StartPlugin(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("discovery paths:\n%s", strings.Join(s.report, "\n")) }()
	scenarios := []struct {
		name    string
		foundBy string
		run     func(t *testing.T, v *volume)
	}{
		{"ext4 stage/publish, device by by-id link", device.FoundByID, s.ext4ReadWrite},
		{"by sysfs serial when the by-id link was removed", device.FoundBySysfs, s.linkRemoved},
		{"by sysfs serial when mdev made no link", device.FoundBySysfs, s.mdevDisabled},
		{"by metadata devices list (disk without serial)", device.FoundByMetadata, s.noSerial},
		{"xfs stage/publish", device.FoundByID, s.xfs},
		{"online ext4 growth after block_resize", device.FoundByID, s.onlineGrowth},
		{"raw block", device.FoundByID, s.rawBlock},
		{"plugin killed mid-stage, stage retried", device.FoundByID, s.restartMidStage},
		{"kata direct-volume record in the guest", device.FoundByID, s.kata},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			// One scenario's hang must not eat the others' time.
			sctx, cancel := context.WithTimeout(ctx, scenarioBox)
			defer cancel()
			s.ctx = sctx
			defer func() { s.ctx = ctx }()
			start := time.Now()
			v := s.newVolume(t)
			v.awaitLink = sc.foundBy == device.FoundByID
			sc.run(t, v)
			got := s.FoundBy(ctx, v.id)
			s.report = append(s.report, fmt.Sprintf("| %s | %s | %.1f s |", sc.name, got, time.Since(start).Seconds()))
			if got != sc.foundBy {
				t.Errorf("device found by %q, want %q", got, sc.foundBy)
			}
			v.teardown(t)
		})
	}
	if err := s.NoMountsLeft(ctx); err != nil {
		t.Error(err)
	}
	if n := len(s.Emu.Volumes()); n != 0 {
		t.Errorf("%d volumes left in the emulator", n)
	}
}

func (s *suite) sh(t *testing.T, script string) string {
	t.Helper()
	out, err := s.Guest.Sh(s.ctx, script)
	if err != nil {
		t.Fatalf("in the guest: %v", err)
	}
	return out
}

func (s *suite) ext4ReadWrite(t *testing.T, v *volume) {
	v.publish(t)
	v.stage(t, mountCap("ext4"))
	v.nodePublish(t, mountCap("ext4"), nil)
	s.sh(t, "set -e; cd "+v.target+"; echo hello > f; sync; grep -q hello f; grep ' "+v.staging+" ' /proc/mounts | grep -q ext4")
}

func (s *suite) linkRemoved(t *testing.T, v *volume) {
	v.publish(t)
	link := "/dev/disk/by-id/virtio-" + v.serial()
	if err := s.Guest.WaitPath(s.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	s.sh(t, "rm -f "+link)
	v.stage(t, mountCap("ext4"))
}

// mdevDisabled stops the guest's mdev (its netlink daemon makes the by-id
// links) for the attach, so the disk arrives with no link at all.
func (s *suite) mdevDisabled(t *testing.T, v *volume) {
	s.sh(t, "kill $(pidof mdev) 2>/dev/null; true")
	defer s.sh(t, "mdev -d")
	v.publish(t)
	s.sh(t, "sleep 1; [ ! -e /dev/disk/by-id/virtio-"+v.serial()+" ]")
	v.stage(t, mountCap("ext4"))
}

// noSerial plugs the disk without a serial (a hypervisor that exposes
// none): neither by-id nor sysfs can name it, and the plugin must go by
// the metadata service's bus address. The test plays udev's path_id for
// the /dev/disk/by-path links mdev does not make.
func (s *suite) noSerial(t *testing.T, v *volume) {
	if err := s.Emu.SetServerGuest(vmenv.ServerID, &emulator.GuestSpec{QMPSocket: s.Guest.QMPSocket(), NoSerial: true}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Emu.SetServerGuest(vmenv.ServerID, &emulator.GuestSpec{QMPSocket: s.Guest.QMPSocket()}) }()
	v.publish(t)
	addr := s.metadataAddress(t, v.id)
	// udev's path_id: wait for the disk at the PCI address, link it.
	s.sh(t, `set -e; for i in $(seq 1 1500); do b=$(ls /sys/bus/pci/devices/`+addr+`/virtio*/block 2>/dev/null) && [ -n "$b" ] && break; usleep 20000; done
		[ -n "$b" ]; mkdir -p /dev/disk/by-path; ln -sfn ../../$b /dev/disk/by-path/pci-`+addr+`; [ -z "$(cat /sys/block/$b/serial)" ]`)
	v.stage(t, mountCap("ext4"))
	v.nodePublish(t, mountCap("ext4"), nil)
	s.sh(t, "set -e; echo meta > "+v.target+"/f; sync")
}

// metadataAddress is the PCI address the metadata service lists for the
// volume.
func (s *suite) metadataAddress(t *testing.T, volumeID string) string {
	t.Helper()
	b, err := s.Emu.MetadataJSON(vmenv.ServerID)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Devices []struct{ Serial, Address, Bus string }
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	for _, d := range md.Devices {
		if d.Serial == volumeID && d.Bus == "pci" {
			return d.Address
		}
	}
	t.Fatalf("volume %s not in the metadata devices: %s", volumeID, b)
	return ""
}

func (s *suite) xfs(t *testing.T, v *volume) {
	v.publish(t)
	v.stage(t, mountCap("xfs"))
	v.nodePublish(t, mountCap("xfs"), nil)
	s.sh(t, "set -e; echo x > "+v.target+"/f; sync; grep ' "+v.staging+" ' /proc/mounts | grep -q xfs")
}

// onlineGrowth: 1 GiB ext4 mounted and written, Cinder extend to 2 GiB
// (the emulator grows the file and block_resizes the guest's disk), then
// NodeExpandVolume grows the mounted filesystem (resize2fs online: the
// host here cannot, lacking CAP_SYS_RESOURCE).
func (s *suite) onlineGrowth(t *testing.T, v *volume) {
	v.publish(t)
	v.stage(t, mountCap("ext4"))
	v.nodePublish(t, mountCap("ext4"), nil)
	s.sh(t, "set -e; dd if=/dev/urandom of="+v.target+"/data bs=1M count=8 2>/dev/null; md5sum "+v.target+"/data > /tmp/"+v.id+".md5; sync")
	before := s.dfKiB(t, v.target)
	resp, err := s.Controller.ControllerExpandVolume(s.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: v.id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeCapability: mountCap("ext4")})
	if err != nil {
		t.Fatalf("ControllerExpandVolume: %v", err)
	}
	if !resp.GetNodeExpansionRequired() {
		t.Fatal("the controller did not ask for node expansion")
	}
	start := time.Now()
	if _, err := s.Node.NodeExpandVolume(s.ctx, &csi.NodeExpandVolumeRequest{VolumeId: v.id, VolumePath: v.target,
		StagingTargetPath: v.staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeCapability: mountCap("ext4")}); err != nil {
		t.Fatalf("NodeExpandVolume: %v", err)
	}
	after := s.dfKiB(t, v.target)
	t.Logf("online ext4 growth: %d KiB -> %d KiB (NodeExpandVolume %.2f s)", before, after, time.Since(start).Seconds())
	if after < before*19/10 {
		t.Fatalf("filesystem %d KiB after growth, want about twice %d KiB", after, before)
	}
	s.sh(t, "md5sum -c /tmp/"+v.id+".md5")
}

func (s *suite) dfKiB(t *testing.T, path string) int64 {
	t.Helper()
	var kib int64
	out := s.sh(t, "df -Pk "+path+" | awk 'NR==2{print $2}'")
	if _, err := fmt.Sscan(out, &kib); err != nil {
		t.Fatalf("df %s: %q", path, out)
	}
	return kib
}

func (s *suite) rawBlock(t *testing.T, v *volume) {
	v.publish(t)
	v.stage(t, blockCap())
	v.nodePublish(t, blockCap(), nil)
	s.sh(t, "set -e; [ -b "+v.target+" ]; echo rawdata | dd of="+v.target+" bs=512 conv=sync,fsync 2>/dev/null; "+
		"dd if="+v.target+" bs=512 count=1 2>/dev/null | grep -q rawdata")
}

// restartMidStage kills the plugin's whole process group (a crashed
// container) while mkfs runs in the first NodeStageVolume, starts it
// again and retries the stage, as kubelet does.
func (s *suite) restartMidStage(t *testing.T, v *volume) {
	v.publish(t)
	watch := "for i in $(seq 1 3000); do p=$(pidof mke2fs mkfs.ext4); [ -n \"$p\" ] && break; usleep 10000; done; " +
		"[ -n \"$p\" ] && { kill -9 -- -$(cat /run/csi-plugin.pgid); echo killed > /run/killed; }"
	s.sh(t, "echo "+fmt.Sprint(s.PluginPID())+" > /run/csi-plugin.pgid; rm -f /run/killed")
	if _, err := s.Guest.Spawn(s.ctx, "/run/watch.log", "sh", "-c", watch); err != nil {
		t.Fatal(err)
	}
	_, err := s.Node.NodeStageVolume(s.ctx, v.stageRequest(mountCap("ext4")))
	killed := s.sh(t, "cat /run/killed 2>/dev/null; true")
	t.Logf("first stage: %v (watcher: %q)", err, strings.TrimSpace(killed))
	if err == nil && strings.TrimSpace(killed) == "" {
		t.Log("mkfs finished before the watcher saw it: the stage was not interrupted")
	}
	s.ForgetPlugin()
	if err := s.StartPlugin(s.ctx); err != nil {
		t.Fatal(err)
	}
	v.stage(t, mountCap("ext4"))
	v.nodePublish(t, mountCap("ext4"), nil)
	s.sh(t, "set -e; echo after-restart > "+v.target+"/f; sync; [ $(grep -c ' "+v.staging+" ' /proc/mounts) = 1 ]")
}

// kata restarts the plugin with Kata direct volumes on, publishes to a
// pod of a kata RuntimeClass and checks the record the plugin wrote in the
// guest (the device, no host mount), then its removal on unpublish.
func (s *suite) kata(t *testing.T, v *volume) {
	const root = "/run/kata-containers/shared/direct-volumes"
	s.Kube.AddNode("vm-node", map[string]string{"cinder.csi.openstack.org/kata-direct-volumes": "true"})
	s.Kube.AddRuntimeClass("kata", "kata-qemu")
	s.Kube.AddPod("default", "kpod", "0c0c0c0c-1111-4222-8333-444455556666", "kata")
	if err := s.KillPlugin(s.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.StartPlugin(s.ctx, "--kata-direct-volumes", "--kubeconfig", "/share/kubeconfig", "--node-name", "vm-node", "--kata-record-root", root); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = s.KillPlugin(s.ctx)
		if err := s.StartPlugin(s.ctx); err != nil {
			t.Error(err)
		}
	}()
	rwop := mountCap("ext4") // one Kata guest owns the filesystem: ReadWriteOncePod
	rwop.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	v.publish(t)
	v.stage(t, rwop)
	v.nodePublish(t, rwop, map[string]string{
		"csi.storage.k8s.io/pod.name": "kpod", "csi.storage.k8s.io/pod.namespace": "default",
		"csi.storage.k8s.io/pod.uid": "0c0c0c0c-1111-4222-8333-444455556666"})
	rec := s.sh(t, "cat "+root+"/*/mountInfo.json")
	t.Logf("kata record: %s", rec)
	if !strings.Contains(rec, `"device"`) || !strings.Contains(rec, "/dev/") {
		t.Fatalf("no device in the record: %s", rec)
	}
	v.nodeUnpublish(t)
	if out := s.sh(t, "ls "+root+" 2>/dev/null | grep -v '^\\.' || true"); strings.TrimSpace(out) != "" {
		t.Fatalf("records left after unpublish: %s", out)
	}
}
