package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/csi/cinder"
	"github.com/cinder-csi/cinder-csi/pkg/kubeclient"
	"github.com/cinder-csi/cinder-csi/pkg/metadata"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
)

// peerPodOptions are the peer-pod mode's flags: the same binary serves
// cinder-peerpod.csi.openstack.org (docs/peer-pods.md).
type peerPodOptions struct {
	enabled        bool
	runtimeClasses stringList
	resync         time.Duration
	attachTimeout  time.Duration
}

func (p *peerPodOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.enabled, "peer-pods", false, "serve the peer-pod driver ("+peerpod.DriverName+" unless --driver-name says otherwise): volumes are attached to the pod's own VM (cloud-api-adaptor), never to the worker")
	fs.Var(&p.runtimeClasses, "peer-pod-runtime-class", "RuntimeClass of peer pods; repeatable (default "+peerpod.DefaultRuntimeClass+")")
	fs.DurationVar(&p.resync, "peer-pod-resync", peerpod.DefaultResync, "how often the controller reconciles peer-pod attachments")
	fs.DurationVar(&p.attachTimeout, "peer-pod-attach-timeout", peerpod.DefaultAttachTimeout, "how long one attach waits for the pod VM to exist and boot")
}

// applyPeerPodDefaults switches the driver name when peer-pod mode keeps
// the Cinder default: the two drivers must never share a CSIDriver name
// (attachRequired differs), so --peer-pods never serves
// cinder.csi.openstack.org.
func (o *options) applyPeerPodDefaults() {
	if o.peerPods.enabled && o.driverName == cinder.DefaultDriverName {
		o.driverName = peerpod.DriverName
	}
}

// startPeerPodController wraps the Cinder controller with the peer-pod
// rules and starts the reconciler that attaches volumes to pod VMs.
func startPeerPodController(ctx context.Context, o *options, cs *cinder.ControllerServer, clouds openstack.Clouds) (*peerpod.Controller, error) {
	c := peerpod.CurrentCloud{Clouds: clouds}
	rc, err := restConfig(o)
	if err != nil {
		return nil, fmt.Errorf("--peer-pods needs the Kubernetes API: %w", err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	att := peerpod.NewAttacher(c, cs, &peerpod.Locator{PeerPods: dyn})
	r := peerpod.NewReconciler(kube, att, peerpod.ReconcilerOptions{
		DriverName: o.driverName, RuntimeClasses: o.peerPods.runtimeClasses, AttachTimeout: o.peerPods.attachTimeout})
	go r.Run(ctx, o.peerPods.resync)
	return peerpod.NewController(cs, c), nil
}

// buildPeerPodNode is the worker side: the direct-volume record writer,
// with the Cinder node's NodeGetInfo (node id and AZ from the metadata
// service).
func buildPeerPodNode(o *options, md *metadata.Client, cfg *config.Config) (csi.NodeServer, error) {
	info, err := cinder.NewNodeServer(cinder.NodeOptions{
		DriverName:         o.driverName,
		Metadata:           md,
		WithTopology:       o.withTopology,
		AdditionalTopology: o.additionalTopology,
		// The worker attaches nothing for this driver.
		NodeVolumeAttachLimit: int64(cfg.BlockStorage.NodeVolumeAttachLimit),
		DevRoot:               o.devRoot,
		SysRoot:               o.sysRoot,
		KubeletRoot:           o.kubeletRootDir,
	})
	if err != nil {
		return nil, err
	}
	kube, err := kubeclient.Client(kubeFlags(o))
	if err != nil {
		return nil, fmt.Errorf("--peer-pods node needs the Kubernetes API to check each pod's RuntimeClass: %w", err)
	}
	gate, err := peerpod.NewPodGate(kube, o.peerPods.runtimeClasses)
	if err != nil {
		return nil, err
	}
	return peerpod.NewNodeServer(info, gate, o.kataRecordRoot, o.kubeletRootDir)
}
