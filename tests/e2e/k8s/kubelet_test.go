package k8s

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const driverName = "cinder.csi.openstack.org"

// kubelet plays the node's part: what node-driver-registrar and kubelet's
// CSI volume plugin would do, over the node plugin's socket, with the same
// paths, volume context and access-mode mapping kubelet uses.
type kubelet struct {
	client   kubernetes.Interface
	conn     *grpc.ClientConn
	node     csi.NodeClient
	driver   string // the CSI driver name this node plugin registers
	nodeName string
	root     string // kubelet's root dir (/var/lib/kubelet)

	nodeID     string
	topology   map[string]string
	maxVolumes int64
	stage      bool // STAGE_UNSTAGE_VOLUME
	expand     bool // EXPAND_VOLUME
	snmw       bool // SINGLE_NODE_MULTI_WRITER
}

func newKubelet(ctx context.Context, client kubernetes.Interface, driver, sock, root, nodeName string) (*kubelet, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	k := &kubelet{client: client, conn: conn, node: csi.NewNodeClient(conn), driver: driver, nodeName: nodeName, root: root}
	caps, err := k.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("NodeGetCapabilities: %w", err)
	}
	for _, c := range caps.GetCapabilities() {
		switch c.GetRpc().GetType() {
		case csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME:
			k.stage = true
		case csi.NodeServiceCapability_RPC_EXPAND_VOLUME:
			k.expand = true
		case csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER:
			k.snmw = true
		}
	}
	return k, nil
}

func (k *kubelet) close() { k.conn.Close() }

// createNode is kubelet's node registration, which happens before any
// DaemonSet pod runs (the node plugin looks its Node up at start for the
// Kata opt-in label).
func createNode(ctx context.Context, c kubernetes.Interface, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
		// The attach/detach controller only attaches for nodes that say so.
		Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
	}}
	_, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	return err
}

// register does what node-driver-registrar and kubelet do when the plugin
// registers: NodeGetInfo, then the Node's topology labels and node-id
// annotation, and the CSINode entry (node id, topology keys, attach limit).
func (k *kubelet) register(ctx context.Context) error {
	info, err := k.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetInfo: %w", err)
	}
	k.nodeID = info.GetNodeId()
	k.topology = info.GetAccessibleTopology().GetSegments()
	k.maxVolumes = info.GetMaxVolumesPerNode()
	if k.nodeID == "" {
		return fmt.Errorf("NodeGetInfo returned no node id: %v", info)
	}
	node, err := k.client.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var keys []string
	for key, v := range k.topology {
		node.Labels[key] = v
		keys = append(keys, key)
	}
	slices.Sort(keys)
	// One node-id entry per driver registered on the node.
	nodeIDs := map[string]string{}
	if old := node.Annotations["csi.volume.kubernetes.io/nodeid"]; old != "" {
		if err := json.Unmarshal([]byte(old), &nodeIDs); err != nil {
			return fmt.Errorf("Node %s nodeid annotation %q: %w", k.nodeName, old, err)
		}
	}
	nodeIDs[k.driver] = k.nodeID
	ids, _ := json.Marshal(nodeIDs)
	node.Annotations["csi.volume.kubernetes.io/nodeid"] = string(ids)
	if _, err := k.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("label Node: %w", err)
	}
	d := storagev1.CSINodeDriver{Name: k.driver, NodeID: k.nodeID, TopologyKeys: keys}
	if k.maxVolumes > 0 {
		n := int32(k.maxVolumes)
		d.Allocatable = &storagev1.VolumeNodeResources{Count: &n}
	}
	return k.addCSINodeDriver(ctx, d)
}

// addCSINodeDriver creates the node's CSINode, or adds the driver to the
// one another driver's registration made.
func (k *kubelet) addCSINodeDriver(ctx context.Context, d storagev1.CSINodeDriver) error {
	cn, err := k.client.StorageV1().CSINodes().Get(ctx, k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cn = &storagev1.CSINode{
			ObjectMeta: metav1.ObjectMeta{Name: k.nodeName},
			Spec:       storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{d}},
		}
		if _, err := k.client.StorageV1().CSINodes().Create(ctx, cn, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CSINode: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	cn.Spec.Drivers = append(cn.Spec.Drivers, d)
	if _, err := k.client.StorageV1().CSINodes().Update(ctx, cn, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("add %s to CSINode %s: %w", k.driver, k.nodeName, err)
	}
	return nil
}

// accessMode maps a PV access mode the way kubelet's CSI plugin does
// (pkg/volume/csi/csi_client.go asCSIAccessModeV1).
func (k *kubelet) accessMode(m corev1.PersistentVolumeAccessMode) csi.VolumeCapability_AccessMode_Mode {
	switch m {
	case corev1.ReadWriteOnce:
		if k.snmw {
			return csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
		}
		return csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	case corev1.ReadWriteOncePod:
		if k.snmw {
			return csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		}
		return csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	case corev1.ReadOnlyMany:
		return csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	case corev1.ReadWriteMany:
		return csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	return csi.VolumeCapability_AccessMode_UNKNOWN
}

func (k *kubelet) capability(pv *corev1.PersistentVolume) *csi.VolumeCapability {
	mode := csi.VolumeCapability_AccessMode_UNKNOWN
	if len(pv.Spec.AccessModes) > 0 {
		mode = k.accessMode(pv.Spec.AccessModes[0])
	}
	vc := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		vc.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		vc.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{
			FsType: pv.Spec.CSI.FSType, MountFlags: pv.Spec.MountOptions,
		}}
	}
	return vc
}

// mounted is one volume kubelet staged and published for a pod.
type mounted struct {
	k        *kubelet // the node that mounted it
	pod      *corev1.Pod
	pv       *corev1.PersistentVolume
	pvc      *corev1.PersistentVolumeClaim
	staging  string
	target   string
	cap      *csi.VolumeCapability
	pubCtx   map[string]string
	attachNS time.Duration // time from the call until the VolumeAttachment was attached
}

// attachedVA waits until the attach/detach controller's VolumeAttachment
// for pv on this node reports attached, and returns it.
func (k *kubelet) attachedVA(ctx context.Context, pvName string, timeout time.Duration) (*storagev1.VolumeAttachment, error) {
	var found *storagev1.VolumeAttachment
	err := poll(ctx, timeout, "VolumeAttachment of "+pvName+" attached", func(ctx context.Context) (bool, error) {
		vas, err := k.client.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range vas.Items {
			va := &vas.Items[i]
			if va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == pvName && va.Spec.NodeName == k.nodeName {
				if va.Status.Attached {
					found = va
					return true, nil
				}
				if e := va.Status.AttachError; e != nil {
					return false, fmt.Errorf("attach error: %s", e.Message)
				}
			}
		}
		return false, nil
	})
	return found, err
}

// mount waits for the pod's PVC to be bound and attached, then stages and
// publishes it at kubelet's paths.
func (k *kubelet) mount(ctx context.Context, pod *corev1.Pod, claim string, timeout time.Duration) (*mounted, error) {
	pvc, pv, err := boundClaim(ctx, k.client, pod.Namespace, claim, timeout)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	va, err := k.attachedVA(ctx, pv.Name, timeout)
	if err != nil {
		return nil, err
	}
	m := &mounted{k: k, pod: pod, pv: pv, pvc: pvc, cap: k.capability(pv), pubCtx: va.Status.AttachmentMetadata, attachNS: time.Since(t0)}
	handle := pv.Spec.CSI.VolumeHandle
	m.staging = filepath.Join(k.root, "plugins/kubernetes.io/csi", k.driver, fmt.Sprintf("%x", sha256.Sum256([]byte(handle))), "globalmount")
	m.target = filepath.Join(k.root, "pods", string(pod.UID), "volumes/kubernetes.io~csi", pv.Name, "mount")
	if k.stage {
		if err := os.MkdirAll(m.staging, 0o750); err != nil {
			return nil, err
		}
		secrets, err := k.secret(ctx, pv.Spec.CSI.NodeStageSecretRef)
		if err != nil {
			return nil, fmt.Errorf("nodeStageSecretRef of %s: %w", pv.Name, err)
		}
		if _, err := k.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
			VolumeId: handle, PublishContext: m.pubCtx, StagingTargetPath: m.staging,
			VolumeCapability: m.cap, VolumeContext: pv.Spec.CSI.VolumeAttributes, Secrets: secrets,
		}); err != nil {
			return nil, fmt.Errorf("NodeStageVolume %s: %w", handle, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(m.target), 0o750); err != nil {
		return nil, err
	}
	volCtx := podVolumeContext(pod, pv)
	req := &csi.NodePublishVolumeRequest{
		VolumeId: handle, PublishContext: m.pubCtx, TargetPath: m.target,
		VolumeCapability: m.cap, VolumeContext: volCtx, Readonly: pv.Spec.CSI.ReadOnly,
	}
	if k.stage {
		req.StagingTargetPath = m.staging
	}
	if _, err := k.node.NodePublishVolume(ctx, req); err != nil {
		return nil, fmt.Errorf("NodePublishVolume %s: %w", handle, err)
	}
	return m, nil
}

// secret reads the Secret a PV names for a node call, as kubelet does
// (its data as strings); no reference, no secrets.
func (k *kubelet) secret(ctx context.Context, ref *corev1.SecretReference) (map[string]string, error) {
	if ref == nil {
		return nil, nil
	}
	s, err := k.client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for key, v := range s.Data {
		out[key] = string(v)
	}
	return out, nil
}

// unmount undoes mount: NodeUnpublish, then NodeUnstage.
func (k *kubelet) unmount(ctx context.Context, m *mounted) error {
	handle := m.pv.Spec.CSI.VolumeHandle
	if _, err := k.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: handle, TargetPath: m.target}); err != nil {
		return fmt.Errorf("NodeUnpublishVolume %s: %w", handle, err)
	}
	if k.stage {
		if _, err := k.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: handle, StagingTargetPath: m.staging}); err != nil {
			return fmt.Errorf("NodeUnstageVolume %s: %w", handle, err)
		}
	}
	return nil
}

// expandFS is kubelet's online filesystem expansion: once the resizer
// leaves the PVC with FileSystemResizePending, NodeExpandVolume on the
// published path, then mark the resize finished on the PVC status (what
// kubelet's MarkFSResizeFinished writes: capacity, no resize conditions,
// no allocatedResourceStatuses entry).
func (k *kubelet) expandFS(ctx context.Context, m *mounted, timeout time.Duration) (int64, error) {
	var pvc *corev1.PersistentVolumeClaim
	if err := poll(ctx, timeout, "FileSystemResizePending on "+m.pvc.Name, func(ctx context.Context) (bool, error) {
		var err error
		pvc, err = k.client.CoreV1().PersistentVolumeClaims(m.pvc.Namespace).Get(ctx, m.pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range pvc.Status.Conditions {
			if c.Type == corev1.PersistentVolumeClaimFileSystemResizePending && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return 0, err
	}
	pv, err := k.client.CoreV1().PersistentVolumes().Get(ctx, m.pv.Name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	req := &csi.NodeExpandVolumeRequest{
		VolumeId: pv.Spec.CSI.VolumeHandle, VolumePath: m.target,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size.Value()}, VolumeCapability: m.cap,
	}
	if k.stage {
		req.StagingTargetPath = m.staging
	}
	// kubelet retries a failed NodeExpandVolume with backoff: on a real
	// cloud the plugin answers Unavailable until the hypervisor has passed
	// the new size to the node (Nova's volume-extended event).
	var resp *csi.NodeExpandVolumeResponse
	var lastErr error
	if err := poll(ctx, timeout, "NodeExpandVolume of "+m.pv.Name, func(ctx context.Context) (bool, error) {
		var err error
		resp, err = k.node.NodeExpandVolume(ctx, req)
		if status.Code(err) == codes.Unavailable {
			lastErr = err
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		if lastErr != nil {
			err = fmt.Errorf("%w (last: %v)", err, lastErr)
		}
		return 0, fmt.Errorf("NodeExpandVolume: %w", err)
	}
	pvc.Status.Capacity[corev1.ResourceStorage] = size
	var conds []corev1.PersistentVolumeClaimCondition
	for _, c := range pvc.Status.Conditions {
		if c.Type != corev1.PersistentVolumeClaimResizing && c.Type != corev1.PersistentVolumeClaimFileSystemResizePending {
			conds = append(conds, c)
		}
	}
	pvc.Status.Conditions = conds
	delete(pvc.Status.AllocatedResourceStatuses, corev1.ResourceStorage)
	if _, err := k.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return 0, fmt.Errorf("mark the resize finished on the PVC: %w", err)
	}
	return resp.GetCapacityBytes(), nil
}

// boundClaim waits until the claim is Bound and returns it with its PV.
func boundClaim(ctx context.Context, c kubernetes.Interface, ns, name string, timeout time.Duration) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume, error) {
	var pvc *corev1.PersistentVolumeClaim
	var pv *corev1.PersistentVolume
	err := poll(ctx, timeout, "PVC "+ns+"/"+name+" Bound", func(ctx context.Context) (bool, error) {
		var err error
		pvc, err = c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
		pv, err = c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w%s", err, claimEvents(ctx, c, ns, name))
	}
	return pvc, pv, nil
}

// claimEvents summarizes a PVC's events for failure messages.
func claimEvents(ctx context.Context, c kubernetes.Interface, ns, name string) string {
	evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	out := "; events:"
	for _, e := range evs.Items {
		out += fmt.Sprintf("\n  %s %s: %s", e.Type, e.Reason, e.Message)
	}
	return out
}

// selectNode is kube-scheduler's volume binder for a pod pinned to our
// node: it names the node on each WaitForFirstConsumer claim, which is
// what lets csi-provisioner create the volume in that node's topology.
func selectNode(ctx context.Context, c kubernetes.Interface, ns, claim, node string) error {
	pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations["volume.kubernetes.io/selected-node"] = node
	_, err = c.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{})
	return err
}

// resizeClaim patches the requested size, as `kubectl patch` would.
func resizeClaim(ctx context.Context, c kubernetes.Interface, ns, claim string, size resource.Quantity) error {
	return poll(ctx, 30*time.Second, "resize "+claim, func(ctx context.Context) (bool, error) {
		pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pvc.Spec.Resources.Requests[corev1.ResourceStorage] = size
		_, err = c.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// podVolumeContext is NodePublish's volume context as kubelet builds it
// for a CSIDriver with podInfoOnMount: the pod's identity, then the PV's
// attributes.
func podVolumeContext(pod *corev1.Pod, pv *corev1.PersistentVolume) map[string]string {
	volCtx := map[string]string{
		"csi.storage.k8s.io/pod.name": pod.Name, "csi.storage.k8s.io/pod.namespace": pod.Namespace,
		"csi.storage.k8s.io/pod.uid": string(pod.UID), "csi.storage.k8s.io/serviceAccount.name": pod.Spec.ServiceAccountName,
		"csi.storage.k8s.io/ephemeral": "false",
	}
	for key, v := range pv.Spec.CSI.VolumeAttributes {
		volCtx[key] = v
	}
	return volCtx
}
