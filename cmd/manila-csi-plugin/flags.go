package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manila"
)

// options are the plugin's command-line settings. Names match the
// reference Manila plugin's flags where one exists, so its manifests keep
// working.
type options struct {
	// The reference plugin's flags.
	endpoint              string
	driverName            string
	protocolSelector      string
	fwdEndpoint           string
	runtimeConfigFile     string
	withTopology          bool
	clusterID             string
	userAgents            cliflag.StringList
	provideController     bool
	provideNode           bool
	pvcAnnotations        bool
	compatibilitySettings string
	deprecatedNodeID      string
	deprecatedNodeAZ      string

	// Ours.
	cloudConfigs     cliflag.StringList
	cephxDelivery    string
	secretNamespace  string
	checkCSINodes    bool
	httpEndpoint     string
	slowThreshold    time.Duration
	apiQPS           float64
	apiBurst         int
	kube             cliflag.Kube
	showVersion      bool
	nodeServiceFlags nodeFlags
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint: unix:///path or tcp://host:port")
	fs.StringVar(&o.driverName, "drivername", manila.DefaultDriverName, "CSI driver name")
	fs.StringVar(&o.protocolSelector, "share-protocol-selector", "", "default share protocol, NFS or CEPHFS; a StorageClass's `protocol` parameter overrides it")
	fs.StringVar(&o.fwdEndpoint, "fwdendpoint", "", "a partner CSI driver's node socket (csi-driver-nfs, ceph-csi) that receives every node call, as in the reference; empty: the node service mounts shares itself")
	fs.StringVar(&o.runtimeConfigFile, "runtime-config-file", "", "JSON runtime config, e.g. {\"nfs\":{\"matchExportLocationAddress\":\"10.0.0.0/24\"}}")
	fs.BoolVar(&o.withTopology, "with-topology", false, "report and honour the availability-zone topology ("+manila.TopologyKey+")")
	fs.StringVar(&o.clusterID, "cluster-id", "", "cluster name, written as "+"manila.csi.openstack.org/cluster metadata and scoping the by-name lookups")
	fs.Var(&o.userAgents, "user-agent", "extra user agent string for OpenStack requests; repeatable")
	fs.BoolVar(&o.provideController, "provide-controller-service", true, "serve the CSI controller service")
	fs.BoolVar(&o.provideNode, "provide-node-service", true, "serve the CSI node service")
	fs.BoolVar(&o.pvcAnnotations, "pvc-annotations", false, "honour the PVC annotations manila.csi.openstack.org/affinity, /anti-affinity (scheduler hints) and /group-id")
	fs.StringVar(&o.compatibilitySettings, "compatibility-settings", "", "accepted for the reference's manifests; unused (shares from snapshots need no compatibility layer here)")
	fs.StringVar(&o.deprecatedNodeID, "nodeid", "", "the node name (default $NODE_NAME, else the host name); the node id adds the node's addresses")
	fs.StringVar(&o.deprecatedNodeAZ, "nodeaz", "", "the node's zone with --with-topology (default: the instance metadata's availability zone)")

	fs.Var(&o.cloudConfigs, "cloud-config", "cloud.conf path (credentials when the requests' secrets carry no os-* keys); repeat to merge several files")
	fs.StringVar(&o.cephxDelivery, "cephx-key-delivery", manila.DeliverySecret, "how cephx keys reach the node: secret (a Kubernetes Secret manila-cephx-<pv> handed to NodeStageVolume) or publish-context (for COs without Secrets)")
	fs.StringVar(&o.secretNamespace, "cephx-secret-namespace", "", "namespace of the cephx Secrets when the StorageClass names none (default: $POD_NAMESPACE)")
	fs.BoolVar(&o.checkCSINodes, "check-csinodes", true, "answer NotFound to ControllerPublishVolume for a node whose CSINode does not list this driver (needs the Kubernetes API)")
	fs.StringVar(&o.httpEndpoint, "http-endpoint", "", "address for /metrics and /healthz, e.g. :9809 (off when empty)")
	fs.DurationVar(&o.slowThreshold, "slow-operation-threshold", 30*time.Second, "log CSI calls slower than this at info level with their timings")
	fs.Float64Var(&o.apiQPS, "openstack-api-qps", 0, "client-side limit on OpenStack API requests per second, per cloud (0: no limit)")
	fs.IntVar(&o.apiBurst, "openstack-api-burst", 10, "requests allowed at once above --openstack-api-qps")
	o.kube.Register(fs, "the cephx Secrets, CSINode checks and PVC annotations")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	o.nodeServiceFlags.register(fs)
}

func (o *options) validate() error {
	var errs []error
	if !o.provideController && !o.provideNode {
		errs = append(errs, errors.New("at least one of --provide-controller-service and --provide-node-service must be true"))
	}
	if !strings.HasPrefix(o.endpoint, "unix://") && !strings.HasPrefix(o.endpoint, "tcp://") {
		errs = append(errs, fmt.Errorf("--endpoint %q must start with unix:// or tcp://", o.endpoint))
	}
	if o.driverName == "" {
		errs = append(errs, errors.New("--drivername must not be empty"))
	}
	switch strings.ToUpper(o.protocolSelector) {
	case "", "NFS", "CEPHFS":
	default:
		errs = append(errs, fmt.Errorf("--share-protocol-selector %q must be NFS or CEPHFS", o.protocolSelector))
	}
	if o.cephxDelivery != manila.DeliverySecret && o.cephxDelivery != manila.DeliveryPublishContext {
		errs = append(errs, fmt.Errorf("--cephx-key-delivery %q must be %s or %s", o.cephxDelivery, manila.DeliverySecret, manila.DeliveryPublishContext))
	}
	if err := o.kube.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// warnings lists the accepted-but-ignored flags that were set.
func (o *options) warnings() []string {
	var w []string
	if o.fwdEndpoint != "" {
		w = append(w, "--fwdendpoint is set: node calls go to the partner driver instead of this plugin mounting NFS and CephFS shares itself")
	}
	if o.deprecatedNodeID != "" {
		w = append(w, "--nodeid is the node name; the node id is <nodeid>/<addresses> (see --node-addresses)")
	}
	if o.deprecatedNodeAZ != "" {
		w = append(w, "--nodeaz is the zone reported with --with-topology, instead of the instance metadata's")
	}
	if o.compatibilitySettings != "" {
		w = append(w, "--compatibility-settings is accepted and unused")
	}
	return w
}

// secretNamespaceOrPod is --cephx-secret-namespace, else the pod's.
func (o *options) secretNamespaceOrPod() string {
	if o.secretNamespace != "" {
		return o.secretNamespace
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "kube-system"
}
