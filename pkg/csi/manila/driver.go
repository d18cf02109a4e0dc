// Package manila is the Manila CSI driver's identity and controller
// services (manila.csi.openstack.org): shares of NFS or CephFS for
// Kubernetes volumes, with access narrowed to the nodes that use them.
// The node service lives in pkg/csi/manilanode; both read the volume and
// publish context keys of pkg/csi/manila/params.
package manila

// DefaultDriverName is the reference plugin's name, so existing
// StorageClasses and PVs keep their provisioner.
const DefaultDriverName = "manila.csi.openstack.org"

// TopologyKey is the reference's zone key (--with-topology).
const TopologyKey = "topology.manila.csi.openstack.org/zone"

// PVC annotations read with --pvc-annotations, as the reference does:
// comma lists of share ids for the 2.65 scheduler hints, and a share group.
const (
	AnnotationAffinity     = "manila.csi.openstack.org/affinity"
	AnnotationAntiAffinity = "manila.csi.openstack.org/anti-affinity"
	AnnotationGroupID      = "manila.csi.openstack.org/group-id"
)

// Metadata keys this driver writes.
const (
	// MetaNode marks an ip access rule made by ControllerPublishVolume for
	// one node (2.45 access rule metadata).
	MetaNode = "manila.csi.openstack.org/node"
	// MetaCephxSecret records "<namespace>/<name>" of the Kubernetes
	// Secret holding a share's cephx key, so DeleteVolume removes it.
	MetaCephxSecret = "manila.csi.openstack.org/cephx-secret"
	// MetaCephxClient records the cephx identity CreateVolume granted.
	MetaCephxClient = "manila.csi.openstack.org/cephx-client"
	// MetaShareClient marks the rules CreateVolume made for nfs-shareClient.
	MetaShareClient = "manila.csi.openstack.org/share-client"
)

// Share metadata copied from the provisioner's --extra-create-metadata.
const (
	metaPVCName      = "csi.storage.k8s.io/pvc/name"
	metaPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	metaPVName       = "csi.storage.k8s.io/pv/name"
)

// shareDescription names the creator for operators browsing Horizon.
const shareDescription = "Created by the Manila CSI driver"

const gib = int64(1) << 30
