package k8s

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// The controller sidecars we run, by container name in the controller
// Deployment; the rig builds each binary under the same name.
// liveness-probe (controller and node) and node-driver-registrar are not
// served by the module proxy here (tools/k8s-rig/README.md); their args are
// still validated against their pinned flag sets, and the harness does the
// registrar's job itself.
var controllerSidecars = []string{"csi-attacher", "csi-provisioner", "csi-snapshotter", "csi-resizer"}

// driver is the emulator, our plugin as controller and as node, and the
// sidecars, each a process with its command line from the manifests.
type driver struct {
	emulatorURL string
	// real is set in the real-cloud mode (E2E_K8S_CLOUD=openstack): no
	// emulator, the state comes from Cinder and Nova.
	real        *realCloud
	metadataURL string
	cloudConf   string
	ctrlSock    string
	nodeSock    string
	devRoot     string
	sysRoot     string
	kubeletDir  string
	// overrides lists every argument changed from the manifests, per
	// container, for the report.
	overrides map[string][]string
	// groupSnapshots: the manifests' csi-snapshotter has the
	// VolumeGroupSnapshot gate on (and so has the snapshot-controller).
	groupSnapshots bool
	// healthz is the liveness URL of each sidecar and plugin (the
	// manifests' livenessProbe paths), by container name.
	healthz map[string]string
}

// startEmulator runs cmd/openstack-emulator with hot-plug under dir: an
// attachment to its local server becomes a loop device linked from
// dir/dev.
func startEmulator(ctx context.Context, p *procs, binDir, dir, nodeName string) (*driver, error) {
	d := &driver{
		devRoot: filepath.Join(dir, "dev"), sysRoot: filepath.Join(dir, "sys"),
		kubeletDir: filepath.Join(dir, "kubelet"),
		cloudConf:  filepath.Join(dir, "cloud.conf"),
		overrides:  map[string][]string{}, healthz: map[string]string{},
	}
	for _, x := range []string{d.devRoot, d.sysRoot, d.kubeletDir} {
		if err := os.MkdirAll(x, 0o755); err != nil {
			return nil, err
		}
	}
	urlFile := filepath.Join(dir, "emulator.url")
	// E2E_K8S_PROFILE=realistic gives Cinder and Nova their real-world
	// latencies (create ~1.5 s, attach ~2 s, ...; docs/emulator.md).
	if _, err := p.start("openstack-emulator", nil, filepath.Join(binDir, "openstack-emulator"),
		"--addr", "127.0.0.1:0", "--url-file", urlFile, "--cloud-conf", d.cloudConf,
		"--dev-root", d.devRoot, "--sys-root", d.sysRoot, "--data-dir", filepath.Join(dir, "emulator-data"),
		"--profile", getenv("E2E_K8S_PROFILE", "fast"),
		"--azs", "nova", "--servers", "id=6b1b6a32-3f5e-4c6b-9f0a-0c1d2e3f4a51,name="+nodeName+",az=nova,local"); err != nil {
		return nil, err
	}
	if err := poll(ctx, 60*time.Second, "the emulator's URL file", func(context.Context) (bool, error) {
		if err := p.checkAlive(); err != nil {
			return false, err
		}
		b, err := os.ReadFile(urlFile)
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return false, nil
		}
		d.emulatorURL = strings.TrimSpace(string(b))
		d.metadataURL = d.emulatorURL + "/openstack/latest/meta_data.json"
		_, err = os.Stat(d.cloudConf)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// startRealCloud is startEmulator's counterpart on the openstack-rig: the
// controller's cloud.conf is the member's one hack/e2e-openstack.sh wrote,
// the node is the rig's server e2e-node1 (its attachments hot-plugged
// under the rig's dev root, its metadata served over HTTP on 127.0.0.1
// from the rig's meta_data.json: no config drive can be mounted here).
func startRealCloud(ctx context.Context, t testing.TB, dir string) (*driver, error) {
	rc, err := newRealCloud(ctx, t)
	if err != nil {
		return nil, err
	}
	d := &driver{
		real: rc, devRoot: rc.env.DevRoot, sysRoot: "/sys",
		kubeletDir: filepath.Join(dir, "kubelet"), cloudConf: rc.env.CloudConf,
		overrides: map[string][]string{}, healthz: map[string]string{},
	}
	if err := os.MkdirAll(d.kubeletDir, 0o755); err != nil {
		return nil, err
	}
	d.metadataURL = rig.ServeMetadata(t, filepath.Join(rc.env.State, "metadata", rc.env.Node1))
	return d, nil
}

// cinderManifests is the kustomize directory the harness deploys: the
// group-snapshots overlay, i.e. the base manifests plus csi-snapshotter's
// CSIVolumeGroupSnapshot gate (flow 10 needs it; every other argument is
// the base's, tests/manifests checks that).
const cinderManifests = sidecarargs.GroupSnapshotsDir

// cinderArgs returns every container's args of cinderManifests.
func cinderArgs(root string) (map[string][]string, error) {
	return sidecarargs.WorkloadArgs(filepath.Join(root, cinderManifests), sidecarargs.Controller, sidecarargs.Node)
}

// nodeCloudConf extracts cloud.conf from the manifests' node ConfigMap, so
// the node plugin runs with the configuration we ship.
func nodeCloudConf(root, path string) error {
	return configMapFile(filepath.Join(root, sidecarargs.ManifestDir), "cinder-csi-node-config", "cloud.conf", path)
}

// configMapFile writes key of the ConfigMap name in the kustomize
// directory dir to path: what a pod would see in its mounted volume.
func configMapFile(dir, name, key, path string) error {
	objs, err := sidecarargs.LoadKustomization(dir)
	if err != nil {
		return err
	}
	o, err := sidecarargs.Find(objs, "ConfigMap", name)
	if err != nil {
		return err
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(o.Data, &cm); err != nil {
		return err
	}
	data, ok := cm.Data[key]
	if !ok {
		return fmt.Errorf("%s has no %s", o, key)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(data), 0o644)
}

// override applies set/drop to a manifest container's args and records
// what changed.
func (d *driver) override(name string, args []string, set map[string]string, drop ...string) []string {
	out := sidecarargs.Override(args, set, drop...)
	var changed []string
	for k, v := range set {
		old, had := sidecarargs.Lookup(args, k)
		switch {
		case !had:
			changed = append(changed, fmt.Sprintf("+--%s=%s", k, v))
		case old != v:
			changed = append(changed, fmt.Sprintf("--%s=%s -> %s", k, old, v))
		}
	}
	for _, k := range drop {
		if old, had := sidecarargs.Lookup(args, k); had {
			changed = append(changed, fmt.Sprintf("-(--%s=%s)", k, old))
		}
	}
	slices.Sort(changed)
	d.overrides[name] = changed
	return out
}

// httpPort returns a free loopback address for a container's
// --http-endpoint (":8081" in a pod's own network namespace would collide
// with other processes on this host).
func loopbackAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// startPlugin runs cmd/cinder-csi-plugin twice, with the controller
// Deployment's and the node DaemonSet's args.
func (d *driver) startPlugin(ctx context.Context, p *procs, binDir, root, dir, kubeconfig, nodeName string) error {
	args, err := cinderArgs(root)
	if err != nil {
		return err
	}
	d.ctrlSock = filepath.Join(dir, "controller", "csi.sock")
	d.nodeSock = filepath.Join(dir, "node", "csi.sock")
	for _, s := range []string{d.ctrlSock, d.nodeSock} {
		if err := os.MkdirAll(filepath.Dir(s), 0o755); err != nil {
			return err
		}
	}
	plugin := filepath.Join(binDir, "cinder-csi-plugin")

	ctrlHTTP, err := loopbackAddr()
	if err != nil {
		return err
	}
	// The controller's cloud.conf is the emulator's (the manifests' Secret
	// holds placeholders). --kubeconfig replaces the in-cluster config that
	// --pvc-annotations would use in a pod.
	ctrlArgs := d.override("controller/cinder-csi-plugin", args["controller/cinder-csi-plugin"], map[string]string{
		"endpoint": "unix://" + d.ctrlSock, "cloud-config": d.cloudConf, "http-endpoint": ctrlHTTP, "kubeconfig": kubeconfig,
	})
	if _, err := p.start("plugin-controller", nil, plugin, ctrlArgs...); err != nil {
		return err
	}
	d.healthz["controller/cinder-csi-plugin"] = "http://" + ctrlHTTP + "/healthz"

	nodeConf := filepath.Join(dir, "node", "cloud.conf")
	if err := nodeCloudConf(root, nodeConf); err != nil {
		return err
	}
	nodeHTTP, err := loopbackAddr()
	if err != nil {
		return err
	}
	// --dev-root, --sys-root and --metadata-url point the node at the
	// emulator's hot-plug tree and metadata service (169.254.169.254 and
	// /dev in a pod); --kubelet-root-dir at the harness kubelet's tree,
	// where it puts every staging and target path (/var/lib/kubelet in a
	// pod); NODE_NAME comes from the downward API in the pod.
	nodeArgs := d.override("node/cinder-csi-plugin", args["node/cinder-csi-plugin"], map[string]string{
		"endpoint": "unix://" + d.nodeSock, "cloud-config": nodeConf, "http-endpoint": nodeHTTP, "kubeconfig": kubeconfig,
		"kata-record-root": filepath.Join(dir, "kata-direct-volumes"),
		"dev-root":         d.devRoot, "sys-root": d.sysRoot, "metadata-url": d.metadataURL,
		"kubelet-root-dir": d.kubeletDir,
	})
	if _, err := p.start("plugin-node", []string{"NODE_NAME=" + nodeName}, plugin, nodeArgs...); err != nil {
		return err
	}
	d.healthz["node/cinder-csi-plugin"] = "http://" + nodeHTTP + "/healthz"
	return poll(ctx, 60*time.Second, "the plugin's CSI sockets", func(context.Context) (bool, error) {
		if err := p.checkAlive(); err != nil {
			return false, err
		}
		for _, s := range []string{d.ctrlSock, d.nodeSock} {
			if fi, err := os.Stat(s); err != nil || fi.Mode()&os.ModeSocket == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// startSidecars runs each controller sidecar with its manifest args, after
// checking them against the sidecar's pinned flag set.
func (d *driver) startSidecars(ctx context.Context, p *procs, rigBin, root, kubeconfig string) error {
	args, err := cinderArgs(root)
	if err != nil {
		return err
	}
	if err := d.startSidecarSet(p, rigBin, args, "", kubeconfig); err != nil {
		return err
	}
	// The snapshot-controller is a cluster add-on, not part of our
	// manifests: started as tools/k8s-rig/up.sh does.
	if !slices.Contains(controllerSidecars, "csi-snapshotter") {
		return d.waitHealthy(ctx, p)
	}
	scArgs := []string{"--kubeconfig", kubeconfig, "--leader-election=false", "--v=2"}
	// The snapshot-controller needs the same group-snapshot gate as our
	// csi-snapshotter (it creates the VolumeGroupSnapshotContents the
	// sidecar acts on): on exactly when the manifests turn it on.
	d.groupSnapshots = groupSnapshotGate(args["controller/csi-snapshotter"])
	if d.groupSnapshots {
		scArgs = append(scArgs, "--feature-gates="+groupSnapshotFeature+"=true")
	}
	if _, err := p.start("snapshot-controller", nil, filepath.Join(rigBin, "snapshot-controller"), scArgs...); err != nil {
		return err
	}
	return d.waitHealthy(ctx, p)
}

// groupSnapshotFeature is external-snapshotter's feature gate for
// VolumeGroupSnapshots (v8.x: sidecar and snapshot-controller alike).
const groupSnapshotFeature = "CSIVolumeGroupSnapshot"

// groupSnapshotGate reports whether a csi-snapshotter command line turns
// VolumeGroupSnapshots on.
func groupSnapshotGate(args []string) bool {
	gates, _ := sidecarargs.Lookup(args, "feature-gates")
	for _, g := range strings.Split(gates, ",") {
		if strings.TrimSpace(g) == groupSnapshotFeature+"=true" {
			return true
		}
	}
	return false
}

// startSidecarSet validates every sidecar's args of a driver's manifests
// against its pinned flag set and starts controllerSidecars on d.ctrlSock,
// each as process procPrefix+name.
func (d *driver) startSidecarSet(p *procs, rigBin string, args map[string][]string, procPrefix, kubeconfig string) error {
	for key, a := range args {
		name := strings.TrimPrefix(strings.TrimPrefix(key, "controller/"), "node/")
		if sc, ok := sidecarargs.ByContainer(name); ok {
			if err := sc.Validate(a); err != nil {
				return fmt.Errorf("manifest args of %s%s: %w", procPrefix, key, err)
			}
		}
	}
	for _, name := range controllerSidecars {
		key := "controller/" + name
		a, ok := args[key]
		if !ok {
			return fmt.Errorf("the %scontroller Deployment has no %s container", procPrefix, name)
		}
		addr, err := loopbackAddr()
		if err != nil {
			return err
		}
		// Only what must differ outside a pod: the socket path (an
		// emptyDir mount in the pod), the kubeconfig (in-cluster config in
		// the pod) and the HTTP address (the pod's own network namespace).
		final := d.override(procPrefix+key, a, map[string]string{"csi-address": d.ctrlSock, "kubeconfig": kubeconfig, "http-endpoint": addr})
		if _, err := p.start(procPrefix+name, nil, filepath.Join(rigBin, name), final...); err != nil {
			return err
		}
		if _, hasHTTP := sidecarargs.Lookup(a, "http-endpoint"); hasHTTP {
			d.healthz[procPrefix+key] = "http://" + addr + "/healthz/leader-election"
		}
	}
	return nil
}

// waitHealthy polls every liveness URL the manifests' probes name until
// each answers 200: the sidecars hold their leader-election leases and the
// plugins pass their own health checks.
func (d *driver) waitHealthy(ctx context.Context, p *procs) error {
	for name, url := range d.healthz {
		if err := poll(ctx, 90*time.Second, name+" "+url, func(ctx context.Context) (bool, error) {
			if err := p.checkAlive(); err != nil {
				return false, err
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	return nil
}
