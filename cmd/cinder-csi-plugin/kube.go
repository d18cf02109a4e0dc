package main

import (
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
	"github.com/cinder-csi/cinder-csi/pkg/kubeclient"
)

// restConfig returns the client config from --kubeconfig and --master, or
// the in-cluster one when both are empty, limited to --kube-api-qps and
// --kube-api-burst.
func restConfig(o *options) (*rest.Config, error) {
	return kubeclient.RestConfig(cliflag.Kube{Kubeconfig: o.kubeconfig, Master: o.master, QPS: o.kubeAPIQPS, Burst: o.kubeAPIBurst})
}

// newPVCLookup reads PVC annotations for the affinity scheduler hints.
func newPVCLookup(o *options) (*kubeclient.PVCLookup, error) {
	rc, err := restConfig(o)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return kubeclient.NewPVCLookup(client), nil
}
