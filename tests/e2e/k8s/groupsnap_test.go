package k8s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// Flow 10 (issue 22): a VolumeGroupSnapshot of an application's two
// labelled PVCs (examples/group-snapshot/), each member restored into a
// new PVC and read back, then the group snapshot deleted with nothing
// left in the cloud. groupsnapshot.storage.k8s.io/v1beta1 is what
// snapshot-controller and csi-snapshotter v8.2-v8.3 serve (client/v8
// v8.2.0, whose CRDs the rig's build.sh extracts with the VolumeSnapshot
// ones).

var (
	groupSnapshotGVR = schema.GroupVersionResource{Group: "groupsnapshot.storage.k8s.io", Version: "v1beta1", Resource: "volumegroupsnapshots"}
	groupContentGVR  = schema.GroupVersionResource{Group: "groupsnapshot.storage.k8s.io", Version: "v1beta1", Resource: "volumegroupsnapshotcontents"}
	contentGVR       = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

const groupSnapshotName = "groupsnap-demo" // examples/group-snapshot/volumegroupsnapshot.yaml

// groupClaims are the labelled claims of examples/group-snapshot/app.yaml.
var groupClaims = []string{"groupsnap-demo-data", "groupsnap-demo-wal"}

// memberFile holds, on each member volume, its own claim's name: a restore
// from the wrong member reads the other name.
const memberFile = "member.txt"

func (e *env) groupFlows() {
	if !e.d.groupSnapshots {
		why := "the manifests' csi-snapshotter has no --feature-gates=" + groupSnapshotFeature + "=true"
		for _, s := range []string{"10 group snapshot", "10 group restore + read", "10 group snapshot delete"} {
			e.skip(s, why)
		}
		return
	}
	e.step("10 group snapshot", e.groupSnapshot)
	e.step("10 group restore + read", e.groupRestore)
	e.step("10 group snapshot delete", e.groupSnapshotDelete)
}

// groupSnapshot mounts both claims of the app, writes a file on each, and
// takes the example VolumeGroupSnapshot of their label until readyToUse.
func (e *env) groupSnapshot() (string, error) {
	objs, err := e.applyExample("group-snapshot/app.yaml", nil)
	if err != nil {
		return "", err
	}
	pod, err := podOf(objs)
	if err != nil {
		return "", err
	}
	var handles []string
	for _, claim := range groupClaims {
		if err := selectNode(e.ctx, e.cp.client, ns, claim, nodeName); err != nil {
			return "", err
		}
		m, err := e.k.mount(e.ctx, pod, claim, stepTimeout)
		if err != nil {
			return "", err
		}
		e.mounted[claim] = m
		if err := writeFile(filepath.Join(m.target, memberFile), claim+"\n"); err != nil {
			return "", err
		}
		handles = append(handles, m.pv.Spec.CSI.VolumeHandle)
	}
	for _, f := range []string{"group-snapshot/volumegroupsnapshotclass.yaml", "group-snapshot/volumegroupsnapshot.yaml"} {
		objs, err := e.applyExample(f, nil)
		if err != nil {
			return "", err
		}
		if err := e.ensureGroupType(objs); err != nil {
			return "", err
		}
	}
	if err := e.waitReadyToUse(groupSnapshotGVR, groupSnapshotName); err != nil {
		return "", err
	}
	members, err := e.groupMembers(e.ctx)
	if err != nil {
		return "", err
	}
	if len(members) != len(groupClaims) {
		return "", fmt.Errorf("member VolumeSnapshots by claim: %v, want one for each of %v", members, groupClaims)
	}
	st, err := e.d.state(e.ctx)
	if err != nil {
		return "", err
	}
	if len(st.GroupSnapshots) != 1 {
		return "", fmt.Errorf("%d Cinder group snapshots, want 1: %v", len(st.GroupSnapshots), st.GroupSnapshots)
	}
	for _, h := range handles {
		if len(snapshotsOf(st, h)) != 1 {
			return "", fmt.Errorf("volume %s has Cinder snapshots %v, want one member snapshot", h, snapshotsOf(st, h))
		}
	}
	return fmt.Sprintf("2 labelled PVCs mounted with a file each; %s readyToUse; members %v; Cinder group snapshot %s (group %v)",
		groupSnapshotName, members, st.GroupSnapshots[0], st.Groups), nil
}

// ensureGroupType makes, on the real cloud, the Cinder group type a
// VolumeGroupSnapshotClass among objs names (as admin, kept: the rig's
// configuration); the emulator seeds it.
func (e *env) ensureGroupType(objs []*unstructured.Unstructured) error {
	if e.d.real == nil {
		return nil
	}
	for _, u := range objs {
		gt, _, _ := unstructured.NestedString(u.Object, "parameters", "group-type")
		if u.GetKind() != "VolumeGroupSnapshotClass" || gt == "" {
			continue
		}
		admin, err := e.d.real.env.AdminLogin(e.ctx)
		if err != nil {
			return fmt.Errorf("admin login for the group type: %w", err)
		}
		return rig.EnsureGroupType(e.ctx, admin, gt)
	}
	return nil
}

// groupMembers maps each claim to the member VolumeSnapshot the
// snapshot-controller made for it: v1beta1 lists no members in the
// group's status; a member is owned by the group, names its claim in
// spec.source.persistentVolumeClaimName and gets
// status.volumeGroupSnapshotName (what examples/group-snapshot/README.md
// selects on) from the snapshot-controller, on the rig a moment after the
// group is ready: the wait is for every member to have it.
func (e *env) groupMembers(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	err := poll(ctx, stepTimeout, "every member VolumeSnapshot naming "+groupSnapshotName+" in its status", func(ctx context.Context) (bool, error) {
		list, err := e.a.dyn.Resource(snapshotGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		clear(out)
		missing = nil
		for _, u := range list.Items {
			if !ownedBy(&u, "VolumeGroupSnapshot", groupSnapshotName) {
				continue
			}
			claim, _, _ := unstructured.NestedString(u.Object, "spec", "source", "persistentVolumeClaimName")
			out[claim] = u.GetName()
			if g, _, _ := unstructured.NestedString(u.Object, "status", "volumeGroupSnapshotName"); g != groupSnapshotName {
				missing = append(missing, u.GetName())
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (members %v, without status.volumeGroupSnapshotName: %v)", err, out, missing)
	}
	return out, nil
}

func ownedBy(u *unstructured.Unstructured, kind, name string) bool {
	return slices.ContainsFunc(u.GetOwnerReferences(), func(o metav1.OwnerReference) bool {
		return o.Kind == kind && o.Name == name
	})
}

func snapshotsOf(st *emuState, volumeID string) []string {
	var out []string
	for _, s := range st.Snapshots {
		if s.VolumeID == volumeID {
			out = append(out, s.ID)
		}
	}
	return out
}

// groupRestore restores each member VolumeSnapshot into a new claim
// (examples/snapshot/restore.yaml renamed) and reads its member's file.
func (e *env) groupRestore() (string, error) {
	members, err := e.groupMembers(e.ctx)
	if err != nil {
		return "", err
	}
	var done []string
	for _, claim := range groupClaims {
		restored := claim + "-restore"
		snap := members[claim]
		m, err := e.consume("snapshot/restore.yaml", restored, func(u *unstructured.Unstructured) {
			renameClaim(restored)(u)
			if u.GetKind() == "PersistentVolumeClaim" {
				_ = unstructured.SetNestedField(u.Object, snap, "spec", "dataSource", "name")
			}
		})
		if err != nil {
			return "", err
		}
		got, err := os.ReadFile(filepath.Join(m.target, memberFile))
		if err != nil {
			return "", err
		}
		if string(got) != claim+"\n" {
			return "", fmt.Errorf("%s (from %s) holds %q, want %q", restored, snap, got, claim+"\n")
		}
		st, err := e.d.state(e.ctx)
		if err != nil {
			return "", err
		}
		v := st.volume(m.pv.Spec.CSI.VolumeHandle)
		src := e.mounted[claim].pv.Spec.CSI.VolumeHandle
		if v == nil || !slices.Contains(snapshotsOf(st, src), v.SnapshotID) {
			return "", fmt.Errorf("restored volume %+v: want snapshot_id the member snapshot of %s %v", v, src, snapshotsOf(st, src))
		}
		done = append(done, fmt.Sprintf("%s <- %s (Cinder snapshot %s)", restored, snap, v.SnapshotID))
	}
	return strings.Join(done, "; ") + "; each member's file read back", nil
}

// groupSnapshotDelete deletes the VolumeGroupSnapshot (deletionPolicy
// Delete) while the restored volumes exist: its content and member
// VolumeSnapshots go, and the cloud keeps no group, group snapshot or
// member snapshot.
func (e *env) groupSnapshotDelete() (string, error) {
	sources := map[string]bool{}
	for _, claim := range groupClaims {
		sources[e.mounted[claim].pv.Spec.CSI.VolumeHandle] = true
	}
	if err := e.a.dyn.Resource(groupSnapshotGVR).Namespace(ns).Delete(e.ctx, groupSnapshotName, metav1.DeleteOptions{}); err != nil {
		return "", err
	}
	var left string
	if err := poll(e.ctx, stepTimeout, "the group snapshot gone from Kubernetes and the cloud", func(ctx context.Context) (bool, error) {
		var k8s []string
		for _, gvr := range []schema.GroupVersionResource{groupSnapshotGVR, groupContentGVR, snapshotGVR, contentGVR} {
			list, err := e.a.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, u := range list.Items {
				if isGroupObject(&u) {
					k8s = append(k8s, u.GetKind()+"/"+u.GetName())
				}
			}
		}
		st, err := e.d.state(ctx)
		if err != nil {
			return false, err
		}
		var snaps []string
		for v := range sources {
			snaps = append(snaps, snapshotsOf(st, v)...)
		}
		left = fmt.Sprintf("objects %v, groups %v, group snapshots %v, member snapshots %v", k8s, st.Groups, st.GroupSnapshots, snaps)
		return len(k8s)+len(st.Groups)+len(st.GroupSnapshots)+len(snaps) == 0, nil
	}); err != nil {
		return "", fmt.Errorf("%w; left: %s", err, left)
	}
	return "VolumeGroupSnapshot, its content and member VolumeSnapshots gone; 0 groups, 0 group snapshots, 0 member snapshots in the cloud; restored volumes kept", nil
}

// isGroupObject is true for the example's VolumeGroupSnapshot, any
// VolumeGroupSnapshotContent, and a member VolumeSnapshot or its content.
func isGroupObject(u *unstructured.Unstructured) bool {
	switch u.GetKind() {
	case "VolumeGroupSnapshot", "VolumeGroupSnapshotContent":
		return true
	case "VolumeSnapshot":
		return ownedBy(u, "VolumeGroupSnapshot", groupSnapshotName)
	case "VolumeSnapshotContent":
		_, inGroup := u.GetAnnotations()["groupsnapshot.storage.k8s.io/volumeGroupSnapshotHandle"]
		return inGroup
	}
	return false
}
