package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The snapshot API types live in external-snapshotter's client module,
// which is not a dependency of this repository; these carry exactly the
// v1 fields (strict decoding rejects anything else).
type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Driver            string            `json:"driver"`
	Parameters        map[string]string `json:"parameters,omitempty"`
	DeletionPolicy    string            `json:"deletionPolicy"`
}

type volumeSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Source struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName,omitempty"`
			VolumeSnapshotContentName *string `json:"volumeSnapshotContentName,omitempty"`
		} `json:"source"`
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName,omitempty"`
	} `json:"spec"`
}

// The VolumeGroupSnapshot v1beta1 fields the examples use.
type volumeGroupSnapshotClass = volumeSnapshotClass

type volumeGroupSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Source struct {
			Selector                       *metav1.LabelSelector `json:"selector,omitempty"`
			VolumeGroupSnapshotContentName *string               `json:"volumeGroupSnapshotContentName,omitempty"`
		} `json:"source"`
		VolumeGroupSnapshotClassName *string `json:"volumeGroupSnapshotClassName,omitempty"`
	} `json:"spec"`
}

// podMonitor: the prometheus-operator fields the chart renders.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Interval string `json:"interval,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// newTyped returns an empty typed object for apiVersion/kind.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "v1/PersistentVolume":
		return &corev1.PersistentVolume{}, nil
	case "v1/Pod":
		return &corev1.Pod{}, nil
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "storage.k8s.io/v1/CSIDriver":
		return &storagev1.CSIDriver{}, nil
	case "storage.k8s.io/v1/StorageClass":
		return &storagev1.StorageClass{}, nil
	case "storage.k8s.io/v1/VolumeAttributesClass":
		return &storagev1.VolumeAttributesClass{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "node.k8s.io/v1/RuntimeClass":
		return &nodev1.RuntimeClass{}, nil
	case "snapshot.storage.k8s.io/v1/VolumeSnapshotClass":
		return &volumeSnapshotClass{}, nil
	case "snapshot.storage.k8s.io/v1/VolumeSnapshot":
		return &volumeSnapshot{}, nil
	case "groupsnapshot.storage.k8s.io/v1beta1/VolumeGroupSnapshotClass":
		return &volumeGroupSnapshotClass{}, nil
	case "groupsnapshot.storage.k8s.io/v1beta1/VolumeGroupSnapshot":
		return &volumeGroupSnapshot{}, nil
	case "monitoring.coreos.com/v1/PodMonitor":
		return &podMonitor{}, nil
	}
	return nil, fmt.Errorf("no typed decoder for %s %s", apiVersion, kind)
}

// decode decodes o strictly (unknown or duplicate fields fail) into its
// typed API object.
func decode(o sidecarargs.Object) (any, error) {
	typed, err := newTyped(o.APIVersion, o.Kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	if err := yaml.UnmarshalStrict(o.Data, typed); err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	return typed, nil
}

func mustDecode[T any](t *testing.T, o sidecarargs.Object) T {
	t.Helper()
	v, err := decode(o)
	if err != nil {
		t.Fatal(err)
	}
	typed, ok := v.(T)
	if !ok {
		t.Fatalf("%s decoded to %T", o, v)
	}
	return typed
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := sidecarargs.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadTree parses every YAML file under root/dir.
func loadTree(t *testing.T, root, dir string) []sidecarargs.Object {
	t.Helper()
	files, err := sidecarargs.YAMLFiles(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []sidecarargs.Object
	for _, f := range files {
		objs, err := sidecarargs.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, objs...)
	}
	return out
}

// podSpecs returns the controller's and the node plugin's pod specs in
// objs, failing the test when either is missing.
func podSpecs(t *testing.T, objs []sidecarargs.Object) (controller, node *corev1.PodSpec) {
	t.Helper()
	c, n, err := sidecarargs.PodSpecsFrom(objs)
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

func kustomized(t *testing.T) []sidecarargs.Object {
	t.Helper()
	objs, err := sidecarargs.LoadKustomization(filepath.Join(repoRoot(t), sidecarargs.ManifestDir))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestEveryYAMLDecodesStrictly: every document in manifests/ and
// examples/ is a known API object with no unknown field.
func TestEveryYAMLDecodesStrictly(t *testing.T) {
	root := repoRoot(t)
	count := 0
	for _, dir := range []string{"manifests", "examples"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, o := range loadTree(t, root, dir) {
			if _, err := decode(o); err != nil {
				t.Error(err)
			}
			count++
		}
	}
	if count == 0 {
		t.Fatal("no YAML documents found")
	}
	t.Logf("%d documents decoded", count)
}
