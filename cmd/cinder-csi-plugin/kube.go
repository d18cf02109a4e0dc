package main

import (
	"k8s.io/client-go/rest"

	"github.com/cinder-csi/cinder-csi/pkg/cliflag"
	"github.com/cinder-csi/cinder-csi/pkg/kubeclient"
)

// kubeFlags are the Kubernetes client flags.
func kubeFlags(o *options) cliflag.Kube {
	return cliflag.Kube{Kubeconfig: o.kubeconfig, Master: o.master, QPS: o.kubeAPIQPS, Burst: o.kubeAPIBurst}
}

// restConfig returns the client config from --kubeconfig and --master, or
// the in-cluster one when both are empty, limited to --kube-api-qps and
// --kube-api-burst.
func restConfig(o *options) (*rest.Config, error) {
	return kubeclient.RestConfig(kubeFlags(o))
}

// newPVCLookup reads PVC annotations for the affinity scheduler hints
// (pruned, TTL-bounded cache: kubeclient.PVCLookup).
func newPVCLookup(o *options) (*kubeclient.PVCLookup, error) {
	client, err := kubeclient.Client(kubeFlags(o))
	if err != nil {
		return nil, err
	}
	return kubeclient.NewPVCLookup(client), nil
}
