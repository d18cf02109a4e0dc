package libvirtnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	csisanity "github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	e2esanity "github.com/cinder-csi/cinder-csi/tests/e2e/openstack/sanity"
	"github.com/cinder-csi/cinder-csi/tests/libvirtguest"
	"github.com/cinder-csi/cinder-csi/tests/sanity/sanitykit"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// timeBox bounds the whole test: the server boots in ~25 s (Nova) plus
// ~20 s (TCG kernel and initramfs), a Nova attach or detach through the
// rig's services takes seconds, and csi-sanity's ~40 node specs each
// attach and detach at least once.
const timeBox = 30 * time.Minute

const kubeletRoot = "/var/lib/kubelet"

var ext4 = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

// node is the plugin in the guest and what the test needs around it.
type node struct {
	g      *libvirtguest.Guest
	srv    *server
	client csi.NodeClient
	sock   string
	// lastDev is the guest disk of the last attach (vdb, ...): its remove
	// event carries no serial.
	lastDev string
}

func TestNodeInLibvirtGuest(t *testing.T) {
	e := requireLibvirt(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeBox)
	defer cancel()
	member, err := e.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plugin := vmrig.BuildPlugin(t, "./cmd/cinder-csi-plugin")
	n := startNode(ctx, t, member, e, plugin)
	ctrl := rig.StartDriver(t, e.Env, "libvirt", "")
	t.Run("AttachDetachReattach", func(t *testing.T) { attachCycle(ctx, t, n, csi.NewControllerClient(ctrl.Conn)) })
	t.Run("SanityNodeSpecs", func(t *testing.T) { sanityNode(ctx, t, n, ctrl) })
}

// startNode boots the server, connects to its agent, puts the plugin at
// /share, starts it (node service only) and checks that its node id is
// the server's, read from the config drive.
func startNode(ctx context.Context, t *testing.T, c *rig.Client, e *env, plugin string) *node {
	t.Helper()
	srv := createServer(ctx, t, c, e)
	// unix socket paths are limited to 108 bytes: t.TempDir() is too deep.
	dir, err := os.MkdirTemp("", "libvirt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	start := time.Now()
	g, err := libvirtguest.Connect(ctx, srv.ID, dir)
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, consoleTail(srv.ID))
	}
	t.Cleanup(func() {
		if t.Failed() {
			lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			log, _ := g.Sh(lctx, "tail -n 60 /var/log/csi.log")
			t.Logf("plugin log (last lines):\n%s", log)
		}
		g.Close()
	})
	agent := time.Since(start)
	if err := g.Share(ctx, plugin); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Spawn(ctx, "/var/log/csi.log", "/share/cinder-csi-plugin", "--endpoint", "unix:///csi/csi.sock",
		"--provide-controller-service=false", "--v=2"); err != nil {
		t.Fatal(err)
	}
	n := &node{g: g, srv: srv, sock: filepath.Join(dir, "node.sock")}
	if err := g.Forward(ctx, n.sock, "unix:/csi/csi.sock"); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+n.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.client = csi.NewNodeClient(conn)
	id, err := n.waitInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != srv.ID {
		t.Fatalf("NodeGetInfo: node id %q, want the server id %s (config drive)", id, srv.ID)
	}
	t.Logf("libvirt: server %s ACTIVE after %.1fs (Nova), guest agent after %.1fs more, plugin node id from the config drive = server id",
		srv.ID, srv.Boot.Seconds(), agent.Seconds())
	return n
}

func consoleTail(serverID string) string {
	state := os.Getenv("RIG_LIBVIRT_STATE")
	if state == "" {
		state = "/var/lib/rig-libvirt"
	}
	b, err := os.ReadFile(filepath.Join(state, "instances", serverID, "console.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// waitInfo waits until the plugin answers NodeGetInfo (its start under
// TCG takes seconds) and returns its node id.
func (n *node) waitInfo(ctx context.Context) (string, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := n.client.NodeGetInfo(cctx, &csi.NodeGetInfoRequest{})
		cancel()
		if err == nil {
			return resp.GetNodeId(), nil
		}
		if !sleep(ctx, 500*time.Millisecond) {
			log, _ := n.g.Sh(context.Background(), "tail -n 30 /var/log/csi.log")
			return "", fmt.Errorf("the plugin never answered NodeGetInfo: %v\n%s", err, log)
		}
	}
}

// latency is one attach or detach as the guest saw it.
type latency struct {
	step          string
	api, guestSaw time.Duration
}

func (l latency) String() string {
	return fmt.Sprintf("%-22s RPC returned %6.2fs, guest block event %6.2fs", l.step, l.api.Seconds(), l.guestSaw.Seconds())
}

// attachCycle: a volume attached by Nova (our ControllerPublish), found by
// serial in the guest, formatted, written, detached, attached again and
// read back.
func attachCycle(ctx context.Context, t *testing.T, n *node, ctrl csi.ControllerClient) {
	vol, err := ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "e2e-libvirt-" + rig.NewUUID()[:8],
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}, VolumeCapabilities: []*csi.VolumeCapability{ext4}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, _ = ctrl.ControllerUnpublishVolume(cctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: n.srv.ID})
		if _, err := ctrl.DeleteVolume(cctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("deleting volume %s: %v", id, err)
		}
	})
	staging := kubeletRoot + "/plugins/kubernetes.io/csi/" + cinder.DefaultDriverName + "/" + id + "/globalmount"
	target := kubeletRoot + "/pods/e2e-libvirt/volumes/kubernetes.io~csi/" + id + "/mount"
	var lat []latency
	for round, work := range []string{
		"set -e; cd %s; echo written-in-a-libvirt-guest > hello.txt; dd if=/dev/urandom of=data bs=1M count=8 2>/dev/null; md5sum data > data.md5; sync",
		"set -e; cd %s; grep -q written-in-a-libvirt-guest hello.txt; md5sum -c data.md5",
	} {
		r := round + 1
		pc, l := publish(ctx, t, n, ctrl, id, fmt.Sprintf("attach %d", r))
		lat = append(lat, l)
		if _, err := n.g.Sh(ctx, "mkdir -p "+staging+" "+filepath.Dir(target)); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, PublishContext: pc,
			StagingTargetPath: staging, VolumeCapability: ext4}); err != nil {
			t.Fatalf("round %d NodeStageVolume: %v", r, err)
		}
		if _, err := n.client.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, PublishContext: pc,
			StagingTargetPath: staging, TargetPath: target, VolumeCapability: ext4}); err != nil {
			t.Fatalf("round %d NodePublishVolume: %v", r, err)
		}
		if out, err := n.g.Sh(ctx, fmt.Sprintf(work, target)); err != nil {
			t.Fatalf("round %d in the volume: %v %s", r, err, out)
		}
		t.Logf("round %d: device found by %s", r, foundBy(ctx, n.g, id))
		if _, err := n.client.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
			t.Fatalf("round %d NodeUnpublishVolume: %v", r, err)
		}
		if _, err := n.client.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
			t.Fatalf("round %d NodeUnstageVolume: %v", r, err)
		}
		lat = append(lat, unpublish(ctx, t, n, ctrl, id, fmt.Sprintf("detach %d", r)))
	}
	for _, l := range lat {
		t.Logf("libvirt latency: %s", l)
	}
}

// publish attaches id to the server through the controller and waits for
// the guest to see the disk and its by-id link.
func publish(ctx context.Context, t *testing.T, n *node, ctrl csi.ControllerClient, id, step string) (map[string]string, latency) {
	t.Helper()
	drainEvents(n.g)
	start := time.Now()
	resp, err := ctrl.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: n.srv.ID, VolumeCapability: ext4})
	if err != nil {
		t.Fatalf("%s: ControllerPublishVolume: %v", step, err)
	}
	api := time.Since(start)
	ev, err := waitBlock(ctx, n.g, "add", id, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.g.WaitPath(ctx, "/dev/disk/by-id/virtio-"+id[:20], false); err != nil {
		t.Fatal(err)
	}
	n.lastDev = ev.Dev
	return resp.GetPublishContext(), latency{step: step + " (" + ev.Dev + ")", api: api, guestSaw: ev.At.Sub(start)}
}

func unpublish(ctx context.Context, t *testing.T, n *node, ctrl csi.ControllerClient, id, step string) latency {
	t.Helper()
	drainEvents(n.g)
	start := time.Now()
	if _, err := ctrl.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: n.srv.ID}); err != nil {
		t.Fatalf("%s: ControllerUnpublishVolume: %v", step, err)
	}
	api := time.Since(start)
	ev, err := waitBlock(ctx, n.g, "remove", id, n.lastDev)
	if err != nil {
		t.Fatal(err)
	}
	return latency{step: step + " (" + ev.Dev + ")", api: api, guestSaw: ev.At.Sub(start)}
}

var foundByRE = regexp.MustCompile(`foundBy="?([a-z-]+)`)

// foundBy reads from the plugin's log which discovery path found the
// volume's device last.
func foundBy(ctx context.Context, g *libvirtguest.Guest, id string) string {
	out, err := g.Sh(ctx, "grep 'Found device' /var/log/csi.log | grep "+id+" | tail -n 1")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if m := foundByRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return "unknown (no \"Found device\" line)"
}

// sanityNode runs csi-sanity's node specs with the node endpoint in the
// guest and the controller on the host: every ControllerPublish the specs
// make is a real Nova attach to the libvirt server.
func sanityNode(ctx context.Context, t *testing.T, n *node, ctrl *rig.Driver) {
	cfg := e2esanity.Config(t, nil, ctrl, false)
	cfg.Address = "unix://" + n.sock
	cfg.ControllerAddress = ctrl.Endpoint
	inGuest := func(script string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return n.g.Sh(cctx, script)
	}
	sanitykit.NodeInGuest(cfg, kubeletRoot, inGuest)
	cfg.DialOptions = append(cfg.DialOptions, sanitykit.PluginCapabilitiesFrom(ctrl.Conn))
	csisanity.Test(t, *cfg)
	if out, err := inGuest("grep ' " + kubeletRoot + "' /proc/mounts || true"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("mounts left in the guest: %v %s", err, out)
	}
}
