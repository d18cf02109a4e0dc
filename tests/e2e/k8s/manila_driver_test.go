package k8s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// The Manila driver (manila.csi.openstack.org) beside Cinder in the same
// control plane: its controller plugin and sidecars with the args of
// manifests/manila-csi-plugin, and one node plugin per "node" (the
// harness plays kubelet on node-1 and node-2, so a ReadWriteMany share is
// attached to two nodes).

const manilaDriverName = "manila.csi.openstack.org"

// manilaNodeNames are the nodes the Manila flows use; node-1 is also the
// Cinder flows' node.
var manilaNodeNames = []string{nodeName, "node-2"}

// manilaNodeAddresses are the node plugins' --node-addresses: each node
// must show the NFS server its own address for per-node ip rules, and
// both run on this host.
var manilaNodeAddresses = map[string]string{nodeName: "127.0.0.11", "node-2": "127.0.0.12"}

// manilaNode is one node plugin and the harness's kubelet for it.
type manilaNode struct {
	name       string
	sock       string
	kubeletDir string
	k          *kubelet
}

// startManila runs the Manila controller plugin, its sidecars and one node
// plugin per manilaNodeNames, cloudConf being the controller's cloud.conf
// (the emulator's, or the member's on the real cloud).
func startManila(ctx context.Context, p *procs, rigBin, binDir, root, dir, kubeconfig, cloudConf string) (*driver, []*manilaNode, error) {
	mdir := filepath.Join(root, sidecarargs.ManilaManifestDir)
	args, err := sidecarargs.WorkloadArgs(mdir, sidecarargs.ManilaController, sidecarargs.ManilaNode)
	if err != nil {
		return nil, nil, err
	}
	m := &driver{ctrlSock: filepath.Join(dir, "manila", "controller", "csi.sock"), cloudConf: cloudConf,
		overrides: map[string][]string{}, healthz: map[string]string{}}
	if err := os.MkdirAll(filepath.Dir(m.ctrlSock), 0o755); err != nil {
		return nil, nil, err
	}
	runtimeConf := filepath.Join(dir, "manila", "runtimeconfig.json")
	if err := configMapFile(mdir, "manila-csi-runtimeconfig", "runtimeconfig.json", runtimeConf); err != nil {
		return nil, nil, err
	}
	plugin := filepath.Join(binDir, "manila-csi-plugin")
	httpAddr, err := loopbackAddr()
	if err != nil {
		return nil, nil, err
	}
	// --kubeconfig replaces the in-cluster config the controller uses for
	// the cephx Secrets and the CSINode check; POD_NAMESPACE is the
	// downward API's (the Secrets' default namespace).
	ctrlArgs := m.override("manila controller/manila-csi-plugin", args["controller/manila-csi-plugin"], map[string]string{
		"endpoint": "unix://" + m.ctrlSock, "cloud-config": cloudConf, "runtime-config-file": runtimeConf,
		"http-endpoint": httpAddr, "kubeconfig": kubeconfig,
	})
	if _, err := p.start("manila-controller", []string{"POD_NAMESPACE=kube-system"}, plugin, ctrlArgs...); err != nil {
		return nil, nil, err
	}
	m.healthz["manila controller/manila-csi-plugin"] = "http://" + httpAddr + "/healthz"
	nodes, err := startManilaNodes(p, m, plugin, dir, args["node/manila-csi-plugin"])
	if err != nil {
		return nil, nil, err
	}
	if err := waitSockets(ctx, p, m.ctrlSock, nodes); err != nil {
		return nil, nil, err
	}
	if err := m.startSidecarSet(p, rigBin, args, "manila-", kubeconfig); err != nil {
		return nil, nil, err
	}
	return m, nodes, m.waitHealthy(ctx, p)
}

// startManilaNodes starts one node plugin per node with the DaemonSet's
// args: its own socket, kubelet root (staging and target paths, stage
// records) and node address; NODE_NAME as the downward API sets it.
func startManilaNodes(p *procs, m *driver, plugin, dir string, args []string) ([]*manilaNode, error) {
	var nodes []*manilaNode
	for _, name := range manilaNodeNames {
		n := &manilaNode{name: name, sock: filepath.Join(dir, "manila", name, "csi.sock"), kubeletDir: filepath.Join(dir, "manila", name, "kubelet")}
		if err := os.MkdirAll(n.kubeletDir, 0o755); err != nil {
			return nil, err
		}
		a := m.override("manila node/manila-csi-plugin ("+name+")", args, map[string]string{
			"endpoint": "unix://" + n.sock, "kubelet-root-dir": n.kubeletDir, "node-addresses": manilaNodeAddresses[name],
		})
		if _, err := p.start("manila-node-"+name, []string{"NODE_NAME=" + name}, plugin, a...); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func waitSockets(ctx context.Context, p *procs, ctrl string, nodes []*manilaNode) error {
	socks := []string{ctrl}
	for _, n := range nodes {
		socks = append(socks, n.sock)
	}
	return poll(ctx, 60*time.Second, "the Manila plugin's CSI sockets", func(context.Context) (bool, error) {
		if err := p.checkAlive(); err != nil {
			return false, err
		}
		for _, s := range socks {
			if fi, err := os.Stat(s); err != nil || fi.Mode()&os.ModeSocket == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// upManila starts the Manila driver, registers node-2 and both Manila node
// plugins as kubelet does, and applies the Manila CSIDriver.
func (e *env) upManila(rigBin, binDir string) (string, error) {
	drv, err := decodeFile(filepath.Join(e.root, sidecarargs.ManilaManifestDir, "csi-manila-driver.yaml"))
	if err != nil {
		return "", err
	}
	if err := e.a.apply(e.ctx, "", false, drv...); err != nil {
		return "", err
	}
	for _, name := range manilaNodeNames[1:] {
		if err := createNode(e.ctx, e.cp.client, name); err != nil {
			return "", err
		}
	}
	m, nodes, err := startManila(e.ctx, e.p, rigBin, binDir, e.root, e.dir, e.cp.kubeconfig, e.d.cloudConf)
	if err != nil {
		return "", err
	}
	e.m, e.mnodes = m, nodes
	var ids []string
	for _, n := range nodes {
		k, err := newKubelet(e.ctx, e.cp.client, manilaDriverName, n.sock, n.kubeletDir, n.name)
		if err != nil {
			return "", err
		}
		n.k = k
		if err := k.register(e.ctx); err != nil {
			return "", fmt.Errorf("%s: %w", n.name, err)
		}
		ids = append(ids, n.name+"="+k.nodeID)
	}
	for name, o := range m.overrides {
		e.t.Logf("manila: arguments changed from the manifests: %s: %v", name, o)
	}
	return fmt.Sprintf("Manila controller + %d sidecars, node plugins on %v (node ids %v); CSIDriver applied; CSINode of each lists the driver",
		len(controllerSidecars), manilaNodeNames, ids), nil
}
