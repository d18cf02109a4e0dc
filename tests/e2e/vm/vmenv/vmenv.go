// Package vmenv sets up the Cinder node suite in a guest: the OpenStack
// emulator on the host with its one server declared a vm-rig guest (VM
// hot-plug mode), the controller service on the host talking to it through
// gophercloud, and cinder-csi-plugin (node service only) built statically
// and run inside the guest, its CSI socket forwarded to the host. The
// guest reaches the emulator's metadata service (and, for the Kata specs,
// a stand-in Kubernetes API) as http://10.0.2.100:2049, the one address
// the rig's restricted user networking forwards to the host.
package vmenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/csi/server"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/tests/vmrig"
)

// ServerID is the emulator's server that the guest is: the node id the
// plugin reads from the metadata service.
const ServerID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

// Guest paths: the plugin's socket and log, and kubelet's root.
const (
	GuestSocket = "/csi/csi.sock"
	PluginLog   = "/var/log/csi.log"
	KubeletRoot = "/var/lib/kubelet"
)

// Env is one guest node with its cloud and controller.
type Env struct {
	Emu        *emulator.Emulator
	Guest      *vmrig.Guest
	NodeSock   string // host end of the forwarded guest CSI socket
	CtrlSock   string // the host controller's socket
	Node       csi.NodeClient
	Controller csi.ControllerClient
	// Kube is the stand-in Kubernetes API the guest's plugin reads for
	// the Kata opt-in (nil until StartPlugin with Kata).
	Kube      *FakeKube
	pluginPID int
}

// Start boots the guest and the host side, within the test's time box.
// The plugin is not started: call StartPlugin.
func Start(t *testing.T) *Env {
	t.Helper()
	r := vmrig.RequireE2E(t)
	share := vmrig.BuildPlugin(t, "./cmd/cinder-csi-plugin")
	work := t.TempDir()
	emu, err := emulator.Start(emulator.Options{
		DataDir: filepath.Join(work, "data"),
		Servers: []emulator.ServerSpec{{ID: ServerID, Name: "vm-node", AZ: "nova"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	e := &Env{Emu: emu, NodeSock: filepath.Join(work, "node.sock"), CtrlSock: filepath.Join(work, "ctrl.sock"), Kube: newFakeKube()}
	front := e.frontDoor(t)
	e.writeShareFiles(t, share)
	e.Guest = r.Start(t, "vmn", vmrig.Options{Share: share, QMP: true, NFSForward: front, MemMiB: 768,
		Forwards: []vmrig.Forward{{Host: e.NodeSock, Guest: "unix:" + GuestSocket}}})
	// The emulator unplugs its guest disks on Close, before the guest stops.
	t.Cleanup(func() { _ = emu.Close() })
	if err := emu.SetServerGuest(ServerID, &emulator.GuestSpec{QMPSocket: e.Guest.QMPSocket()}); err != nil {
		t.Fatal(err)
	}
	e.startController(t, work)
	conn, err := grpc.NewClient("unix://"+e.NodeSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.Node = csi.NewNodeClient(conn)
	return e
}

// frontDoor serves, on one host port, the emulator's metadata service and
// the stand-in Kubernetes API, and returns the port.
func (e *Env) frontDoor(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emuURL, _ := url.Parse(e.Emu.URL())
	mux := http.NewServeMux()
	mux.Handle("/servers/", httputil.NewSingleHostReverseProxy(emuURL))
	mux.Handle("/openstack/", httputil.NewSingleHostReverseProxy(emuURL))
	mux.Handle("/api/", e.Kube)
	mux.Handle("/apis/", e.Kube)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// writeShareFiles puts the plugin's cloud.conf and kubeconfig in /share.
func (e *Env) writeShareFiles(t *testing.T, share string) {
	t.Helper()
	files := map[string]string{
		"cloud.conf": "[Metadata]\nsearch-order = metadataService\n",
		"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://" + vmrig.HostAddress + ":2049\n" +
			"contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(share, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *Env) startController(t *testing.T, work string) {
	t.Helper()
	conf := filepath.Join(work, "cloud.conf")
	if err := os.WriteFile(conf, []byte(e.Emu.CloudConf("Global", "demo")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clouds, err := openstack.NewClouds(ctx, []string{conf}, openstack.Options{UserAgent: []string{"e2e-vm"}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cinder.NewControllerServer(clouds, cinder.DefaultControllerOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{
		Endpoint: "unix://" + e.CtrlSock,
		Identity: cinder.NewIdentityServer(cinder.IdentityOptions{DriverName: cinder.DefaultDriverName, Version: "e2e-vm",
			WithTopology: true, ProvidesController: true}),
		Controller:    cs,
		SlowThreshold: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.serve(t, srv)
	conn, err := grpc.NewClient("unix://"+e.CtrlSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.Controller = csi.NewControllerClient(conn)
}

// PluginArgs are the node plugin's arguments in the guest.
func PluginArgs(extra ...string) []string {
	return append([]string{"/share/cinder-csi-plugin", "--endpoint", "unix://" + GuestSocket,
		"--provide-controller-service=false", "--cloud-config", "/share/cloud.conf",
		"--metadata-url", "http://" + vmrig.HostAddress + ":2049/servers/" + ServerID + "/openstack/latest/meta_data.json",
		"--kubelet-root-dir", KubeletRoot, "-v", "4"}, extra...)
}

// StartPlugin starts the node plugin in the guest with PluginArgs(extra)
// and waits until it answers NodeGetInfo with the server's id.
func (e *Env) StartPlugin(ctx context.Context, extra ...string) error {
	pid, err := e.Guest.Spawn(ctx, PluginLog, PluginArgs(extra...)...)
	if err != nil {
		return err
	}
	e.pluginPID = pid
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := e.Node.NodeGetInfo(cctx, &csi.NodeGetInfoRequest{})
		cancel()
		if err == nil {
			if resp.GetNodeId() != ServerID {
				return fmt.Errorf("node id %q, want the server's %s", resp.GetNodeId(), ServerID)
			}
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the plugin never answered NodeGetInfo (%v); its log:\n%s", err, e.LogTail(ctx, 30))
		case <-t.C:
		}
	}
}

// KillPlugin kills the plugin (SIGKILL: no graceful shutdown, as a crash).
func (e *Env) KillPlugin(ctx context.Context) error {
	if e.pluginPID == 0 {
		return nil
	}
	_, err := e.Guest.Sh(ctx, fmt.Sprintf("kill -9 %d; while [ -e /proc/%d ]; do usleep 20000; done", e.pluginPID, e.pluginPID))
	e.pluginPID = 0
	return err
}

// PluginPID is the running plugin's pid (its own session and process
// group in the guest), 0 when none runs.
func (e *Env) PluginPID() int { return e.pluginPID }

// ForgetPlugin records that the plugin was killed by other means.
func (e *Env) ForgetPlugin() { e.pluginPID = 0 }

// LogTail is the last n lines of the plugin's log.
func (e *Env) LogTail(ctx context.Context, n int) string {
	out, err := e.Guest.Sh(ctx, "tail -n "+strconv.Itoa(n)+" "+PluginLog)
	if err != nil {
		return err.Error()
	}
	return out
}

var foundByRE = regexp.MustCompile(`foundBy="?([a-z-]+)`)

// FoundBy is how the plugin last found the volume's device, from its log
// ("by-id", "sysfs", "metadata", "nova-hint"; "" if it never did).
func (e *Env) FoundBy(ctx context.Context, volumeID string) string {
	out, err := e.Guest.Sh(ctx, "grep 'Found device\\|no serial to check' "+PluginLog+" | grep "+volumeID+" | tail -1")
	if err != nil {
		return ""
	}
	if m := foundByRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// StagingPath and TargetPath are kubelet's paths for a volume in the guest.
func StagingPath(volumeID string) string {
	return KubeletRoot + "/plugins/kubernetes.io/csi/" + cinder.DefaultDriverName + "/" + volumeID + "/globalmount"
}

// TargetPath is a pod's mount (or, for block, device file) path.
func TargetPath(pod, volumeID string) string {
	return KubeletRoot + "/pods/" + pod + "/volumes/kubernetes.io~csi/" + volumeID + "/mount"
}

// NoMountsLeft fails unless nothing is mounted under kubelet's root in the
// guest.
func (e *Env) NoMountsLeft(ctx context.Context) error {
	out, err := e.Guest.Sh(ctx, "grep ' "+KubeletRoot+"' /proc/mounts || true")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("mounts left in the guest:\n%s", s)
	}
	return nil
}
