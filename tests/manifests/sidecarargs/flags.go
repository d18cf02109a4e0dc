package sidecarargs

// FlagKind tells whether a flag takes a value. A Bool flag may be given
// as --name or --name=true|false; a Value flag needs --name=value (or the
// next argument).
type FlagKind int

// The flag kinds.
const (
	Bool  FlagKind = iota // --name or --name=true|false
	Value                 // --name=value or --name value
)

// Sidecar is one pinned sidecar image and the command line its binary
// accepts at that version.
type Sidecar struct {
	// Container is the container name in our manifests.
	Container string
	// Image is the repository without tag; Version the pinned tag.
	Image   string
	Version string
	// Flags accepted by the binary at Version, without leading dashes.
	Flags map[string]FlagKind
	// FeatureGates the binary's --feature-gates accepts.
	FeatureGates []string
	// Source says where the flag list was read.
	Source string
}

// loggingFlags are registered by k8s.io/component-base/logs/api/v1
// AddGoFlags/AddFlags (component-base v0.33), used by every sidecar below
// except node-driver-registrar.
var loggingFlags = map[string]FlagKind{
	"v": Value, "vmodule": Value, "logging-format": Value,
	"log-text-split-stream": Bool, "log-text-info-buffer-size": Value,
	"log-json-split-stream": Bool, "log-json-info-buffer-size": Value,
}

// leaderElectionFlags and friends come from csi-lib-utils (standardflags
// in v0.24, per-binary copies before).
var leaderElectionFlags = map[string]FlagKind{
	"leader-election": Bool, "leader-election-namespace": Value,
	"leader-election-lease-duration": Value, "leader-election-renew-deadline": Value,
	"leader-election-retry-period": Value,
}

func merge(sets ...map[string]FlagKind) map[string]FlagKind {
	out := map[string]FlagKind{}
	for _, s := range sets {
		for k, v := range s {
			out[k] = v
		}
	}
	return out
}

// Pinned lists the sidecars our manifests run, at the versions the Go
// module proxy serves for the k8s rig (tools/k8s-rig/README.md) where it
// serves them. node-driver-registrar and livenessprobe are not served
// there; they are pinned to the releases of the same Kubernetes 1.33
// sidecar set as csi-provisioner v5.3.0, csi-resizer v1.14.0 and
// csi-snapshotter v8.3.0.
var Pinned = []Sidecar{
	{
		Container: "csi-provisioner",
		Image:     "registry.k8s.io/sig-storage/csi-provisioner",
		Version:   "v5.3.0",
		Source:    "github.com/kubernetes-csi/external-provisioner/v5@v5.3.0 cmd/csi-provisioner/csi-provisioner.go",
		Flags: merge(loggingFlags, leaderElectionFlags, map[string]FlagKind{
			"master": Value, "kubeconfig": Value, "csi-address": Value,
			"volume-name-prefix": Value, "volume-name-uuid-length": Value, "version": Bool,
			"retry-interval-start": Value, "retry-interval-max": Value,
			"worker-threads": Value, "cloning-protection-threads": Value, "capacity-threads": Value,
			"timeout": Value, "strict-topology": Bool, "immediate-topology": Bool,
			"extra-create-metadata": Bool, "metrics-address": Value, "http-endpoint": Value,
			"metrics-path": Value, "enable-pprof": Bool, "default-fstype": Value,
			"kube-api-qps": Value, "kube-api-burst": Value,
			"kube-api-capacity-qps": Value, "kube-api-capacity-burst": Value,
			"enable-capacity": Bool, "capacity-for-immediate-binding": Bool,
			"capacity-poll-interval": Value, "capacity-ownerref-level": Value,
			"node-deployment": Bool, "node-deployment-immediate-binding": Bool,
			"node-deployment-base-delay": Value, "node-deployment-max-delay": Value,
			"controller-publish-readonly": Bool, "prevent-volume-mode-conversion": Bool,
			"feature-gates": Value, "automaxprocs": Bool,
		}),
		FeatureGates: []string{"Topology", "HonorPVReclaimPolicy", "CrossNamespaceVolumeDataSource", "VolumeAttributesClass"},
	},
	{
		Container: "csi-attacher",
		Image:     "registry.k8s.io/sig-storage/csi-attacher",
		Version:   "v4.13.0",
		Source:    "github.com/kubernetes-csi/external-attacher/v4@v4.13.0 cmd/csi-attacher/main.go + csi-lib-utils@v0.24.0 standardflags",
		Flags: merge(loggingFlags, leaderElectionFlags, map[string]FlagKind{
			"resync": Value, "timeout": Value, "retry-interval-start": Value, "retry-interval-max": Value,
			"worker-threads": Value, "max-entries": Value, "default-fstype": Value,
			"reconcile-sync": Value, "max-grpc-log-length": Value, "feature-gates": Value,
			"version": Bool, "kubeconfig": Value, "csi-address": Value,
			"leader-election-labels": Value, "kube-api-qps": Value, "kube-api-burst": Value,
			"http-endpoint": Value, "metrics-address": Value, "metrics-path": Value,
			"automaxprocs": Bool,
		}),
		FeatureGates: []string{"MutableCSINodeAllocatableCount", "ReleaseLeaderElectionOnExit"},
	},
	{
		Container: "csi-snapshotter",
		Image:     "registry.k8s.io/sig-storage/csi-snapshotter",
		Version:   "v8.3.0",
		Source:    "github.com/kubernetes-csi/external-snapshotter/v8@v8.3.0 cmd/csi-snapshotter/main.go",
		Flags: merge(loggingFlags, leaderElectionFlags, map[string]FlagKind{
			"kubeconfig": Value, "csi-address": Value, "resync-period": Value,
			"snapshot-name-prefix": Value, "snapshot-name-uuid-length": Value, "version": Bool,
			"worker-threads": Value, "timeout": Value, "extra-create-metadata": Bool,
			"kube-api-qps": Value, "kube-api-burst": Value, "metrics-address": Value,
			"http-endpoint": Value, "metrics-path": Value, "retry-interval-start": Value,
			"retry-interval-max": Value, "node-deployment": Bool,
			"groupsnapshot-name-prefix": Value, "groupsnapshot-name-uuid-length": Value,
			"feature-gates": Value, "automaxprocs": Bool,
		}),
		FeatureGates: []string{"CSIVolumeGroupSnapshot"},
	},
	{
		Container: "csi-resizer",
		Image:     "registry.k8s.io/sig-storage/csi-resizer",
		Version:   "v1.14.0",
		Source:    "github.com/kubernetes-csi/external-resizer@v1.14.0 cmd/csi-resizer/main.go",
		Flags: merge(loggingFlags, leaderElectionFlags, map[string]FlagKind{
			"master": Value, "kubeconfig": Value, "resync-period": Value, "workers": Value,
			"extra-modify-metadata": Bool, "csi-address": Value, "timeout": Value, "version": Bool,
			"retry-interval-start": Value, "retry-interval-max": Value,
			"metrics-address": Value, "http-endpoint": Value, "metrics-path": Value,
			"kube-api-qps": Value, "kube-api-burst": Value, "handle-volume-inuse-error": Bool,
			"feature-gates": Value, "automaxprocs": Bool,
		}),
		FeatureGates: []string{"AnnotateFsResize", "RecoverVolumeExpansionFailure", "VolumeAttributesClass"},
	},
	{
		Container: "liveness-probe",
		Image:     "registry.k8s.io/sig-storage/livenessprobe",
		Version:   "v2.16.0",
		Source:    "github.com/kubernetes-csi/livenessprobe cmd/livenessprobe/main.go; --automaxprocs added in v2.16.0 (CHANGELOG-2.16)",
		Flags: merge(loggingFlags, map[string]FlagKind{
			"probe-timeout": Value, "csi-address": Value, "health-port": Value,
			"metrics-address": Value, "http-endpoint": Value, "metrics-path": Value,
			"automaxprocs": Bool,
		}),
	},
	{
		Container: "node-driver-registrar",
		Image:     "registry.k8s.io/sig-storage/csi-node-driver-registrar",
		Version:   "v2.14.0",
		Source:    "github.com/kubernetes-csi/node-driver-registrar cmd/csi-node-driver-registrar/main.go; --automaxprocs added in v2.14.0 (CHANGELOG-2.14); logging flags limited to the klog ones every version has",
		Flags: map[string]FlagKind{
			"connection-timeout": Value, "timeout": Value, "csi-address": Value,
			"plugin-registration-path": Value, "kubelet-registration-path": Value,
			"health-port": Value, "http-endpoint": Value, "version": Bool, "mode": Value,
			"enable-pprof": Bool, "automaxprocs": Bool, "v": Value, "vmodule": Value,
		},
	},
}

// ByContainer returns the pinned sidecar run in the container of that name.
func ByContainer(name string) (Sidecar, bool) {
	for _, s := range Pinned {
		if s.Container == name {
			return s, true
		}
	}
	return Sidecar{}, false
}

// ImageRef is the pinned image reference, repository:tag.
func (s Sidecar) ImageRef() string { return s.Image + ":" + s.Version }
