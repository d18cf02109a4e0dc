package kubeclient

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ManagedByLabel marks the Secrets a driver writes, so an operator can list
// them and the driver never touches a Secret it did not make.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// SecretStore writes and deletes a driver's Secrets (the Manila
// controller's cephx keys).
type SecretStore struct {
	client    kubernetes.Interface
	namespace string
	managedBy string
}

// NewSecretStore returns a store that labels its Secrets with managedBy
// (the driver name) and defaults to namespace.
func NewSecretStore(client kubernetes.Interface, namespace, managedBy string) *SecretStore {
	return &SecretStore{client: client, namespace: namespace, managedBy: managedBy}
}

// DefaultNamespace is where Secrets go when the caller names none.
func (s *SecretStore) DefaultNamespace() string { return s.namespace }

// Put creates the Secret or updates its data. A Secret of that name that
// this driver did not make is refused rather than overwritten.
func (s *SecretStore) Put(ctx context.Context, namespace, name string, data map[string]string) error {
	secrets := s.client.CoreV1().Secrets(namespace)
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{ManagedByLabel: s.managedBy}},
		Type:       corev1.SecretTypeOpaque,
		StringData: data,
	}
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	have, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if have.Labels[ManagedByLabel] != s.managedBy {
		return fmt.Errorf("secret %s/%s exists and is not labelled %s=%s; not overwriting it", namespace, name, ManagedByLabel, s.managedBy)
	}
	same := len(have.Data) == len(data)
	for k, v := range data {
		same = same && string(have.Data[k]) == v
	}
	if same {
		return nil
	}
	have.Data, have.StringData = nil, data
	_, err = secrets.Update(ctx, have, metav1.UpdateOptions{})
	return err
}

// Delete removes the Secret if this driver made it; absent is success.
func (s *SecretStore) Delete(ctx context.Context, namespace, name string) error {
	secrets := s.client.CoreV1().Secrets(namespace)
	have, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if have.Labels[ManagedByLabel] != s.managedBy {
		return nil
	}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// CSINodes answers whether a node runs the driver's node plugin: its
// CSINode object lists the driver. This is what "the node does not exist"
// means to a CSI driver whose nodes are not cloud servers.
type CSINodes struct {
	client kubernetes.Interface
	driver string
}

// NewCSINodes returns a directory over client for driver.
func NewCSINodes(client kubernetes.Interface, driver string) *CSINodes {
	return &CSINodes{client: client, driver: driver}
}

// NodeExists reports whether node's CSINode lists the driver.
func (c *CSINodes) NodeExists(ctx context.Context, node string) (bool, error) {
	n, err := c.client.StorageV1().CSINodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, d := range n.Spec.Drivers {
		if d.Name == c.driver {
			return true, nil
		}
	}
	return false, nil
}
