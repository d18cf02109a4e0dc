package main

import (
	"context"
	"fmt"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/kubeclient"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func buildController(ctx context.Context, o *options, m *metrics.Metrics) (*manila.ControllerServer, error) {
	osOpts := openstack.Options{UserAgent: o.userAgents, Observer: m}
	if o.apiQPS > 0 {
		osOpts.RateLimits = map[string]openstack.RateLimit{openstack.AllServices: {QPS: o.apiQPS, Burst: o.apiBurst}}
	}
	clouds, err := openstack.NewShareClouds(ctx, o.cloudConfigs, osOpts)
	if err != nil {
		return nil, err
	}
	rc, err := manila.LoadRuntimeConfig(o.runtimeConfigFile)
	if err != nil {
		return nil, err
	}
	co := manila.DefaultControllerOptions()
	co.DriverName = o.driverName
	co.ClusterID = o.clusterID
	co.WithTopology = o.withTopology
	co.Runtime = rc
	co.KeyDelivery = o.cephxDelivery
	co.PVCAnnotations = o.pvcAnnotations
	if o.protocolSelector != "" {
		co.DefaultProtocol = o.protocolSelector
	} else {
		co.DefaultProtocol = params.ProtocolNFS
	}
	if o.cephxDelivery == manila.DeliverySecret || o.pvcAnnotations || o.checkCSINodes {
		client, err := kubeclient.Client(o.kube)
		if err != nil {
			return nil, fmt.Errorf("the Kubernetes API (for --cephx-key-delivery=secret, --check-csinodes or --pvc-annotations): %w", err)
		}
		if o.cephxDelivery == manila.DeliverySecret {
			co.Keys = kubeclient.NewSecretStore(client, o.secretNamespaceOrPod(), o.driverName)
		}
		if o.pvcAnnotations {
			co.PVCLookup = kubeclient.NewPVCLookup(client)
		}
		if o.checkCSINodes {
			co.Nodes = kubeclient.NewCSINodes(client, o.driverName)
		}
	}
	return manila.NewControllerServer(clouds, co)
}
