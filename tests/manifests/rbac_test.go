package manifests_test

import (
	"slices"
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

type need struct {
	group, resource string
	verbs           []string
}

// sidecarNeeds is what each sidecar's deploy/kubernetes/rbac.yaml grants
// at the pinned version (cluster scope), i.e. what it calls.
var sidecarNeeds = map[string][]need{
	"csi-provisioner": {
		{"", "persistentvolumes", []string{"get", "list", "watch", "create", "patch", "delete"}},
		{"", "persistentvolumeclaims", []string{"get", "list", "watch", "update"}},
		{"storage.k8s.io", "storageclasses", []string{"get", "list", "watch"}},
		{"", "events", []string{"list", "watch", "create", "update", "patch"}},
		{"snapshot.storage.k8s.io", "volumesnapshots", []string{"get", "list"}},
		{"snapshot.storage.k8s.io", "volumesnapshotcontents", []string{"get", "list"}},
		{"storage.k8s.io", "csinodes", []string{"get", "list", "watch"}},
		{"", "nodes", []string{"get", "list", "watch"}},
		{"storage.k8s.io", "volumeattachments", []string{"get", "list", "watch"}},
	},
	"csi-attacher": {
		{"", "persistentvolumes", []string{"get", "list", "watch", "patch"}},
		{"storage.k8s.io", "csinodes", []string{"get", "list", "watch"}},
		{"storage.k8s.io", "volumeattachments", []string{"get", "list", "watch", "patch"}},
		{"storage.k8s.io", "volumeattachments/status", []string{"patch"}},
	},
	"csi-snapshotter": {
		{"", "events", []string{"list", "watch", "create", "update", "patch"}},
		{"snapshot.storage.k8s.io", "volumesnapshotclasses", []string{"get", "list", "watch"}},
		{"snapshot.storage.k8s.io", "volumesnapshotcontents", []string{"get", "list", "watch", "update", "patch"}},
		{"snapshot.storage.k8s.io", "volumesnapshotcontents/status", []string{"update", "patch"}},
	},
	"csi-resizer": {
		{"", "persistentvolumes", []string{"get", "list", "watch", "patch"}},
		{"", "persistentvolumeclaims", []string{"get", "list", "watch"}},
		{"", "persistentvolumeclaims/status", []string{"patch"}},
		{"", "events", []string{"list", "watch", "create", "update", "patch"}},
		{"storage.k8s.io", "volumeattributesclasses", []string{"get", "list", "watch"}},
	},
	// The plugin with --pvc-annotations.
	"cinder-csi-plugin": {
		{"", "persistentvolumeclaims", []string{"get", "list", "watch"}},
	},
}

// leaseVerbs is what leader election does with its Lease.
var leaseVerbs = []string{"get", "watch", "list", "delete", "update", "create"}

// nodeNeeds: the Kata lookups (own Node, published Pod, its RuntimeClass).
var nodeNeeds = []need{
	{"", "nodes", []string{"get"}},
	{"", "pods", []string{"get"}},
	{"node.k8s.io", "runtimeclasses", []string{"get"}},
}

func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) {
			return true
		}
	}
	return false
}

// boundRules collects the rules of every ClusterRole (cluster) and Role
// (namespace ns) bound to the ServiceAccount ns/sa.
func boundRules(t *testing.T, objs []sidecarargs.Object, ns, sa string) (cluster, namespaced []rbacv1.PolicyRule) {
	t.Helper()
	subject := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
				return true
			}
		}
		return false
	}
	for _, o := range objs {
		switch o.Kind {
		case "ClusterRoleBinding":
			b := mustDecode[*rbacv1.ClusterRoleBinding](t, o)
			if subject(b.Subjects) {
				r := mustDecode[*rbacv1.ClusterRole](t, must(sidecarargs.Find(objs, "ClusterRole", b.RoleRef.Name)))
				cluster = append(cluster, r.Rules...)
			}
		case "RoleBinding":
			b := mustDecode[*rbacv1.RoleBinding](t, o)
			if b.Namespace != ns || !subject(b.Subjects) {
				continue
			}
			if b.RoleRef.Kind != "Role" {
				t.Errorf("RoleBinding %s refers to a %s", b.Name, b.RoleRef.Kind)
				continue
			}
			r := mustDecode[*rbacv1.Role](t, must(sidecarargs.Find(objs, "Role", b.RoleRef.Name)))
			if r.Namespace != ns {
				t.Errorf("Role %s is in namespace %q, its binding in %q", r.Name, r.Namespace, ns)
			}
			namespaced = append(namespaced, r.Rules...)
		}
	}
	return cluster, namespaced
}

func TestRBAC(t *testing.T) {
	checkRBAC(t, kustomized(t), "kube-system")
}

func checkRBAC(t *testing.T, objs []sidecarargs.Object, ns string) {
	t.Helper()
	c, n := podSpecs(t, objs)
	checkRBACOf(t, objs, ns, c, n, nil, nodeNeeds)
}

// checkRBACOf checks the ServiceAccounts of controller c and node n: every
// sidecar's needs plus extra on the controller's, leases for leader
// election, nodeWants (read-only) on the node's.
func checkRBACOf(t *testing.T, objs []sidecarargs.Object, ns string, c, n *corev1.PodSpec, extra, nodeWants []need) {
	t.Helper()
	for _, sa := range []string{c.ServiceAccountName, n.ServiceAccountName} {
		if _, err := sidecarargs.Find(objs, "ServiceAccount", sa); err != nil {
			t.Error(err)
		}
	}
	cluster, namespaced := boundRules(t, objs, ns, c.ServiceAccountName)
	for _, nd := range extra {
		for _, v := range nd.verbs {
			if !grants(cluster, nd.group, nd.resource, v) {
				t.Errorf("controller needs %s %s/%s cluster-wide; no ClusterRole bound to %s grants it", v, nd.group, nd.resource, c.ServiceAccountName)
			}
		}
	}
	for _, ctr := range c.Containers {
		for _, nd := range sidecarNeeds[ctr.Name] {
			for _, v := range nd.verbs {
				if !grants(cluster, nd.group, nd.resource, v) {
					t.Errorf("%s needs %s %s/%s cluster-wide; no ClusterRole bound to %s grants it", ctr.Name, v, nd.group, nd.resource, c.ServiceAccountName)
				}
			}
		}
		if le, _ := sidecarargs.Lookup(ctr.Args, "leader-election"); le == "true" {
			for _, v := range leaseVerbs {
				if !grants(namespaced, "coordination.k8s.io", "leases", v) {
					t.Errorf("%s elects a leader but the controller SA may not %s leases in %s", ctr.Name, v, ns)
				}
			}
		}
	}
	ncluster, nnamespaced := boundRules(t, objs, ns, n.ServiceAccountName)
	for _, nd := range nodeWants {
		for _, v := range nd.verbs {
			if !grants(ncluster, nd.group, nd.resource, v) {
				t.Errorf("node plugin needs %s %s/%s", v, nd.group, nd.resource)
			}
		}
	}
	// The node reads, never writes, and never sees Secrets.
	for _, r := range append(ncluster, nnamespaced...) {
		for _, v := range r.Verbs {
			if !slices.Contains([]string{"get", "list", "watch"}, v) {
				t.Errorf("node SA has write verb %q on %v", v, r.Resources)
			}
		}
		if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") {
			t.Errorf("node SA may read %v", r.Resources)
		}
	}
}
