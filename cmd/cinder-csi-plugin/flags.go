package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
)

// options are the plugin's command-line settings. Names match the reference
// plugin's flags where one exists, so existing manifests keep working.
type options struct {
	endpoint           string
	cloudConfigs       stringList
	cloudNames         stringList
	cluster            string
	httpEndpoint       string
	driverName         string
	provideController  bool
	provideNode        bool
	withTopology       bool
	additionalTopology keyValueMap
	pvcAnnotations     bool
	userAgents         stringList
	slowThreshold      time.Duration
	apiQPS             float64
	apiBurst           int

	// Node-side host locations. Tests point them at the emulator's
	// hot-plug tree; production leaves the defaults.
	devRoot     string
	sysRoot     string
	metadataURL string
	// kubeletRootDir is kubelet's --root-dir: staging and target paths
	// must lie beneath it.
	kubeletRootDir string

	kataDirectVolumes  bool
	kataHandlerPrefix  string
	kataRecordRoot     string
	nodeKataLabel      string
	kataCacheTTL       time.Duration
	kubeconfig         string
	master             string
	kubeAPIQPS         float64
	kubeAPIBurst       int
	minResyncPeriod    time.Duration
	nodeName           string
	showVersion        bool
	peerPods           peerPodOptions
	deprecatedNodeID   string
	deprecatedNoOSNode bool
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint: unix:///path or tcp://host:port")
	fs.Var(&o.cloudConfigs, "cloud-config", "cloud.conf path; repeat to merge several files, later over earlier")
	fs.Var(&o.cloudNames, "cloud-name", "[Global \"name\"] sections this controller serves; repeatable (default: the [Global] section)")
	fs.StringVar(&o.cluster, "cluster", "", "cluster name, written as cinder.csi.openstack.org/cluster metadata on created volumes and snapshots")
	fs.StringVar(&o.httpEndpoint, "http-endpoint", "", "address for /metrics and /healthz, e.g. :9809 (off when empty)")
	fs.StringVar(&o.driverName, "driver-name", "cinder.csi.openstack.org", "CSI driver name")
	fs.BoolVar(&o.provideController, "provide-controller-service", true, "serve the CSI controller service")
	fs.BoolVar(&o.provideNode, "provide-node-service", true, "serve the CSI node service")
	fs.BoolVar(&o.withTopology, "with-topology", true, "report and honour the availability-zone topology")
	fs.Var(&o.additionalTopology, "additional-topology", "extra node topology segment key=value; repeatable")
	fs.BoolVar(&o.pvcAnnotations, "pvc-annotations", false, "honour the PVC affinity and anti-affinity annotations as Cinder scheduler hints")
	fs.Var(&o.userAgents, "user-agent", "extra user agent string for OpenStack requests; repeatable")
	fs.DurationVar(&o.slowThreshold, "slow-operation-threshold", 30*time.Second, "log CSI calls slower than this at info level with their timings")
	fs.Float64Var(&o.apiQPS, "openstack-api-qps", 0, "client-side limit on OpenStack API requests per second, per cloud, all services together; set it below the cloud's rate limit (0: no limit)")
	fs.IntVar(&o.apiBurst, "openstack-api-burst", 10, "requests allowed at once above --openstack-api-qps")
	fs.StringVar(&o.devRoot, "dev-root", "/dev", "device tree root (tests only)")
	fs.StringVar(&o.sysRoot, "sys-root", "/sys", "sysfs root (tests only)")
	fs.StringVar(&o.kubeletRootDir, "kubelet-root-dir", "/var/lib/kubelet", "kubelet's --root-dir; the node service refuses staging and target paths outside it")
	fs.StringVar(&o.metadataURL, "metadata-url", "http://169.254.169.254/openstack/latest/meta_data.json", "OpenStack metadata service document")
	fs.BoolVar(&o.kataDirectVolumes, "kata-direct-volumes", false, "pass block devices to Kata Containers pods that opt in, instead of mounting them on the host")
	fs.StringVar(&o.kataHandlerPrefix, "kata-runtime-handler-prefix", "kata", "RuntimeClass handlers with this prefix opt pods into direct volumes")
	fs.StringVar(&o.kataRecordRoot, "kata-record-root", "/run/kata-containers/shared/direct-volumes", "where Kata direct-volume records are written")
	fs.StringVar(&o.nodeKataLabel, "node-kata-label", "cinder.csi.openstack.org/kata-direct-volumes=true", "node label (key=value) that opts a node into Kata direct volumes")
	fs.DurationVar(&o.kataCacheTTL, "kata-lookup-cache-ttl", 30*time.Second, "how long pod and RuntimeClass lookups are cached")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for the PVC-annotation and Kata lookups (default: in-cluster config)")
	fs.StringVar(&o.master, "master", "", "Kubernetes API server address, overriding the kubeconfig's")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 5, "requests per second to the Kubernetes API server")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 10, "requests allowed at once above --kube-api-qps")
	fs.DurationVar(&o.minResyncPeriod, "min-resync-period", 12*time.Hour, "accepted for the reference plugin's manifests; unused, as PVC annotations are read on demand (cached 30s), not through an informer")
	fs.StringVar(&o.nodeName, "node-name", "", "Kubernetes node name for the Kata node opt-in (default: $NODE_NAME)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.deprecatedNodeID, "nodeid", "", "deprecated and ignored: the node id comes from the metadata service")
	o.peerPods.register(fs)
	fs.BoolVar(&o.deprecatedNoOSNode, "node-service-no-os-client", false, "deprecated and ignored: the node never talks to OpenStack")
}

func (o *options) validate() error {
	var errs []error
	if !o.provideController && !o.provideNode {
		errs = append(errs, errors.New("at least one of --provide-controller-service and --provide-node-service must be true"))
	}
	if o.provideController && len(o.cloudConfigs) == 0 {
		errs = append(errs, errors.New("--cloud-config is required when the controller service is provided"))
	}
	if !strings.HasPrefix(o.endpoint, "unix://") && !strings.HasPrefix(o.endpoint, "tcp://") {
		errs = append(errs, fmt.Errorf("--endpoint %q must start with unix:// or tcp://", o.endpoint))
	}
	if o.kubeAPIQPS <= 0 || o.kubeAPIBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps (%g) and --kube-api-burst (%d) must be positive", o.kubeAPIQPS, o.kubeAPIBurst))
	}
	if o.provideNode && !strings.HasPrefix(o.kubeletRootDir, "/") {
		errs = append(errs, fmt.Errorf("--kubelet-root-dir %q must be an absolute path", o.kubeletRootDir))
	}
	if o.driverName == "" {
		errs = append(errs, errors.New("--driver-name must not be empty"))
	}

	return errors.Join(errs...)
}

// The repeatable flag types are shared with the Manila plugin.
type (
	stringList  = cliflag.StringList
	keyValueMap = cliflag.KeyValueMap
)
