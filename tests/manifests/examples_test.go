package manifests_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder/params"
	manilaparams "github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// TestExamples: the example StorageClass and snapshot classes are what
// docs and the e2e harness rely on, and every example refers only to
// objects the examples define.
// manilaDriverName is the Manila driver's; its examples live in examples/manila.
const manilaDriverName = "manila.csi.openstack.org"

// peerPodDriverName is the Cinder peer-pod driver's (examples/peer-pods).
const peerPodDriverName = "cinder-peerpod.csi.openstack.org"

func TestExamples(t *testing.T) {
	root := repoRoot(t)
	objs := loadTree(t, root, "examples")
	defined := map[string]bool{}
	for _, o := range objs {
		defined[o.Kind+"/"+o.Name] = true
	}

	sc := mustDecode[*storagev1.StorageClass](t, must(sidecarargs.Find(objs, "StorageClass", "csi-sc-cinderplugin")))
	if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Error("csi-sc-cinderplugin must use WaitForFirstConsumer")
	}
	if sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion {
		t.Error("csi-sc-cinderplugin must allow volume expansion")
	}
	if rel, _ := filepath.Rel(root, must(sidecarargs.Find(objs, "StorageClass", "csi-sc-cinderplugin")).File); rel != "examples/storageclass.yaml" {
		t.Errorf("csi-sc-cinderplugin lives in %s; the e2e harness reads examples/storageclass.yaml", rel)
	}

	types := map[string]bool{}
	for _, o := range objs {
		switch o.Kind {
		case "StorageClass":
			s := mustDecode[*storagev1.StorageClass](t, o)
			if s.Provisioner != driverName && s.Provisioner != manilaDriverName && s.Provisioner != peerPodDriverName {
				t.Errorf("%s: provisioner %q", o, s.Provisioner)
			}
			for _, term := range s.AllowedTopologies {
				for _, e := range term.MatchLabelExpressions {
					if !strings.HasPrefix(e.Key, "topology.cinder.csi.openstack.org/") && !strings.HasPrefix(e.Key, "topology.manila.csi.openstack.org/") && !strings.HasPrefix(e.Key, "topology.kubernetes.io/") {
						t.Errorf("%s: topology key %s is not one the driver reports", o, e.Key)
					}
				}
			}
		case "VolumeSnapshotClass":
			c := mustDecode[*volumeSnapshotClass](t, o)
			if c.Driver == manilaDriverName {
				continue // Manila snapshot classes have no type
			}
			if c.Driver != driverName {
				t.Errorf("%s: driver %q", o, c.Driver)
			}
			typ := c.Parameters["type"]
			if typ != "" && typ != "snapshot" && typ != "backup" {
				t.Errorf("%s: type %q is neither snapshot nor backup", o, typ)
			}
			types[typ] = true
		case "VolumeSnapshot":
			s := mustDecode[*volumeSnapshot](t, o)
			if n := s.Spec.VolumeSnapshotClassName; n != nil && !defined["VolumeSnapshotClass/"+*n] {
				t.Errorf("%s: class %s is not defined in examples/", o, *n)
			}
			if n := s.Spec.Source.PersistentVolumeClaimName; n != nil && !defined["PersistentVolumeClaim/"+*n] {
				t.Errorf("%s: source PVC %s is not defined in examples/", o, *n)
			}
		case "VolumeAttributesClass":
			c := mustDecode[*storagev1.VolumeAttributesClass](t, o)
			if c.DriverName != driverName {
				t.Errorf("%s: driverName %q", o, c.DriverName)
			}
		case "VolumeGroupSnapshot":
			s := mustDecode[*volumeGroupSnapshot](t, o)
			if n := s.Spec.VolumeGroupSnapshotClassName; n != nil && !defined["VolumeGroupSnapshotClass/"+*n] {
				t.Errorf("%s: class %s is not defined in examples/", o, *n)
			}
			if sel := s.Spec.Source.Selector; sel != nil && !labelledPVC(t, objs, sel.MatchLabels) {
				t.Errorf("%s: no PVC in examples/ carries the labels %v", o, sel.MatchLabels)
			}
		case "PersistentVolumeClaim":
			p := mustDecode[*corev1.PersistentVolumeClaim](t, o)
			if n := p.Spec.StorageClassName; n == nil || !defined["StorageClass/"+*n] {
				t.Errorf("%s: storageClassName %v is not defined in examples/", o, n)
			}
			if n := p.Spec.VolumeAttributesClassName; n != nil && !defined["VolumeAttributesClass/"+*n] {
				t.Errorf("%s: volumeAttributesClassName %s is not defined in examples/", o, *n)
			}
			if ds := p.Spec.DataSource; ds != nil && !defined[ds.Kind+"/"+ds.Name] {
				t.Errorf("%s: dataSource %s/%s is not defined in examples/", o, ds.Kind, ds.Name)
			}
		case "Pod":
			p := mustDecode[*corev1.Pod](t, o)
			for _, v := range p.Spec.Volumes {
				if c := v.PersistentVolumeClaim; c != nil && !defined["PersistentVolumeClaim/"+c.ClaimName] {
					t.Errorf("%s: claim %s is not defined in examples/", o, c.ClaimName)
				}
			}
			for _, c := range p.Spec.Containers {
				if _, tag := sidecarargs.SplitImage(c.Image); tag == "" || tag == "latest" {
					t.Errorf("%s: image %q is not pinned", o, c.Image)
				}
			}
		}
	}
	if !types["snapshot"] || !types["backup"] {
		t.Errorf("examples need a snapshot and a backup VolumeSnapshotClass, have %v", types)
	}
}

// TestClassParameters: every StorageClass, VolumeSnapshotClass and
// VolumeAttributesClass in the
// examples passes the plugin's own parameter parser, so an example never
// teaches a key the driver rejects.
func TestClassParameters(t *testing.T) {
	checkClassParameters(t, loadTree(t, repoRoot(t), "examples"))
}

func checkClassParameters(t *testing.T, objs []sidecarargs.Object) {
	t.Helper()
	for _, o := range objs {
		switch o.Kind {
		case "StorageClass":
			sc := mustDecode[*storagev1.StorageClass](t, o)
			parse := func(p map[string]string) error { _, err := params.ParseVolume(p); return err }
			if sc.Provisioner == manilaDriverName {
				parse = func(p map[string]string) error { _, err := manilaparams.ParseVolume(p); return err }
			}
			if err := parse(sc.Parameters); err != nil {
				t.Errorf("%s: %v", o, err)
			}
		case "VolumeSnapshotClass":
			c := mustDecode[*volumeSnapshotClass](t, o)
			parse := func(p map[string]string) error { _, err := params.ParseSnapshot(p); return err }
			if c.Driver == manilaDriverName {
				parse = func(p map[string]string) error { _, err := manilaparams.ParseSnapshot(p); return err }
			}
			if err := parse(c.Parameters); err != nil {
				t.Errorf("%s: %v", o, err)
			}
		case "VolumeAttributesClass":
			c := mustDecode[*storagev1.VolumeAttributesClass](t, o)
			if _, err := params.ParseMutable(c.Parameters); err != nil {
				t.Errorf("%s: %v", o, err)
			}
		case "VolumeGroupSnapshotClass":
			c := mustDecode[*volumeGroupSnapshotClass](t, o)
			if _, err := params.ParseGroupSnapshot(c.Parameters); err != nil {
				t.Errorf("%s: %v", o, err)
			}
		}
	}
}

// labelledPVC reports whether some PVC in objs carries every label of want.
func labelledPVC(t *testing.T, objs []sidecarargs.Object, want map[string]string) bool {
	for _, o := range objs {
		if o.Kind != "PersistentVolumeClaim" {
			continue
		}
		p := mustDecode[*corev1.PersistentVolumeClaim](t, o)
		ok := len(want) > 0
		for k, v := range want {
			ok = ok && p.Labels[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}
