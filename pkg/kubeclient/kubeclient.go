// Package kubeclient holds the plugins' few Kubernetes API uses: the client
// config from the shared flags, PVC annotation lookups (--pvc-annotations),
// and for the Manila controller the Secrets that carry cephx keys and the
// CSINode check behind "node not found".
package kubeclient

import (
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
)

// RestConfig returns the client config from --kubeconfig and --master, or
// the in-cluster one when both are empty, limited to --kube-api-qps and
// --kube-api-burst.
func RestConfig(k cliflag.Kube) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if k.Kubeconfig == "" && k.Master == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags(k.Master, k.Kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	rc.QPS = float32(k.QPS)
	rc.Burst = k.Burst
	return rc, nil
}

// Client returns a clientset for the flags.
func Client(k cliflag.Kube) (kubernetes.Interface, error) {
	rc, err := RestConfig(k)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
