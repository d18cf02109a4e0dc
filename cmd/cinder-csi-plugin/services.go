package main

import (
	"context"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/kata"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func buildController(ctx context.Context, o *options, cfg *config.Config, m *metrics.Metrics) (*cinder.ControllerServer, openstack.Clouds, error) {
	clouds, err := openstack.NewClouds(ctx, o.cloudConfigs, openstack.Options{
		UserAgent:  o.userAgents,
		Observer:   m,
		CloudNames: o.cloudNames,
		RateLimits: apiRateLimits(o),
	})
	if err != nil {
		return nil, nil, err
	}
	co := cinder.DefaultControllerOptions()
	co.DriverName = o.driverName
	co.Cluster = o.cluster
	co.WithTopology = o.withTopology
	co.IgnoreVolumeAZ = cfg.BlockStorage.IgnoreVolumeAZ
	co.PVCAnnotations = o.pvcAnnotations
	co.PeerPods = o.peerPods.enabled
	if o.pvcAnnotations {
		lookup, err := newPVCLookup(o)
		if err != nil {
			return nil, nil, fmt.Errorf("--pvc-annotations: %w", err)
		}
		co.PVCLookup = lookup
	}
	cs, err := cinder.NewControllerServer(clouds, co)
	return cs, clouds, err
}

// apiRateLimits turns --openstack-api-qps into one bucket shared by every
// service: clouds usually rate-limit a project across its endpoints.
func apiRateLimits(o *options) map[string]openstack.RateLimit {
	if o.apiQPS <= 0 {
		return nil
	}
	return map[string]openstack.RateLimit{openstack.AllServices: {QPS: o.apiQPS, Burst: o.apiBurst}}
}

func buildNode(ctx context.Context, o *options, cfg *config.Config, m *metrics.Metrics) (csi.NodeServer, error) {
	md, err := metadata.New(metadata.Options{
		SearchOrder:    cfg.Metadata.SearchOrder,
		URL:            o.metadataURL,
		RequestTimeout: cfg.Metadata.RequestTimeout,
		DevRoot:        o.devRoot,
	})
	if err != nil {
		return nil, err
	}
	nodeName := o.nodeName
	if nodeName == "" {
		nodeName = os.Getenv("NODE_NAME")
	}
	ko := kata.Options{
		Enabled:              o.kataDirectVolumes,
		NodeName:             nodeName,
		NodeOptInLabel:       o.nodeKataLabel,
		RecordRoot:           o.kataRecordRoot,
		RuntimeHandlerPrefix: o.kataHandlerPrefix,
		LookupCacheTTL:       o.kataCacheTTL,
	}
	if o.kataDirectVolumes {
		rc, err := restConfig(o)
		if err != nil {
			return nil, err
		}
		ko.KubeConfig = rc
	}
	if o.peerPods.enabled {
		return buildPeerPodNode(o, md, cfg)
	}
	publisher, err := kata.New(ctx, ko)
	if err != nil {
		return nil, fmt.Errorf("kata direct volumes: %w", err)
	}
	m.SetKataRecordsFunc(publisher.RecordCount)
	return cinder.NewNodeServer(cinder.NodeOptions{
		DriverName:            o.driverName,
		Metadata:              md,
		WithTopology:          o.withTopology,
		AdditionalTopology:    o.additionalTopology,
		NodeVolumeAttachLimit: int64(cfg.BlockStorage.NodeVolumeAttachLimit),
		RescanOnResize:        cfg.BlockStorage.RescanOnResize,
		DevRoot:               o.devRoot,
		SysRoot:               o.sysRoot,
		KubeletRoot:           o.kubeletRootDir,
		Kata:                  publisher,
		Metrics:               m,
	})
}
