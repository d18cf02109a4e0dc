package main

import (
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/peerpod"
)

func TestPeerPodFlags(t *testing.T) {
	o := parse(t, []string{"--peer-pods", "--provide-controller-service=false", "--peer-pod-runtime-class=kata-remote",
		"--peer-pod-runtime-class=kata-remote-cc", "--peer-pod-resync=2s"})
	o.applyPeerPodDefaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.driverName != peerpod.DriverName || len(o.peerPods.runtimeClasses) != 2 || o.peerPods.resync != 2*time.Second {
		t.Errorf("driver %q, runtime classes %q, resync %v", o.driverName, o.peerPods.runtimeClasses, o.peerPods.resync)
	}
	o = parse(t, []string{"--peer-pods", "--driver-name=peerpod.example.com", "--provide-controller-service=false"})
	o.applyPeerPodDefaults()
	if o.driverName != "peerpod.example.com" {
		t.Errorf("an explicit --driver-name was replaced: %q", o.driverName)
	}
	o = parse(t, []string{"--provide-controller-service=false"})
	o.applyPeerPodDefaults()
	if o.driverName != "cinder.csi.openstack.org" || o.peerPods.attachTimeout != peerpod.DefaultAttachTimeout {
		t.Errorf("without --peer-pods: driver %q, attach timeout %v", o.driverName, o.peerPods.attachTimeout)
	}
}
