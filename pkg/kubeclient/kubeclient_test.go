package kubeclient

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSecretStorePutIsIdempotentAndDeleteOnlyTouchesOurs(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "ns"}})
	s := NewSecretStore(client, "ns", "manila.csi.openstack.org")
	for i := 0; i < 2; i++ {
		if err := s.Put(ctx, "ns", "manila-cephx-pv1", map[string]string{"userID": "pv1", "userKey": "k"}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	got, err := client.CoreV1().Secrets("ns").Get(ctx, "manila-cephx-pv1", metav1.GetOptions{})
	if err != nil || got.Labels[ManagedByLabel] != "manila.csi.openstack.org" {
		t.Fatalf("secret %+v, %v", got, err)
	}
	if err := s.Put(ctx, "ns", "foreign", map[string]string{"userKey": "k"}); err == nil {
		t.Error("overwrote a Secret the driver did not make")
	}
	if err := s.Delete(ctx, "ns", "foreign"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, "foreign", metav1.GetOptions{}); err != nil {
		t.Errorf("deleted a foreign Secret: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Delete(ctx, "ns", "manila-cephx-pv1"); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
}

func TestCSINodesFindsNodesRunningTheDriver(t *testing.T) {
	client := fake.NewSimpleClientset(
		&storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "manila.csi.openstack.org", NodeID: "a/10.0.0.1"}}}},
		&storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "cinder.csi.openstack.org", NodeID: "x"}}}},
	)
	d := NewCSINodes(client, "manila.csi.openstack.org")
	for node, want := range map[string]bool{"a": true, "b": false, "c": false} {
		got, err := d.NodeExists(context.Background(), node)
		if err != nil || got != want {
			t.Errorf("node %s: %v %v, want %v", node, got, err, want)
		}
	}
}
