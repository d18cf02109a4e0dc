package main

import (
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/csi/pluginmain"
)

// Every flag of the reference plugin, as its manifests, chart and docs
// pass them: an operator swapping the image keeps the container args.
var referenceArgs = []string{
	"--endpoint=unix://csi/csi.sock",
	"--cloud-config=/etc/config/cloud.conf", "--cloud-config=/etc/config/cloud-override.conf",
	"--cloud-name=", "--cloud-name=region-two",
	"--cluster=kubernetes",
	"--http-endpoint=:9809",
	"--provide-controller-service=true", "--provide-node-service=true",
	"--with-topology=true",
	"--additional-topology", "topology.kubernetes.io/region=RegionTwo",
	"--user-agent=acme/1.0",
	"--pvc-annotations",
	"--master=https://10.0.0.1:6443", "--kubeconfig=/etc/kubernetes/kubeconfig",
	"--kube-api-qps=7", "--kube-api-burst=12", "--min-resync-period=6h",
	"--nodeid=ignored", "--node-service-no-os-client=true",
	"--v=5",
}

func parse(t *testing.T, args []string) *options {
	t.Helper()
	var o options
	if err := pluginmain.NewFlagSet("test", o.register).Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return &o
}

func TestReferencePluginFlagsAreAccepted(t *testing.T) {
	o := parse(t, referenceArgs)
	if err := o.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if o.master != "https://10.0.0.1:6443" || o.kubeAPIQPS != 7 || o.kubeAPIBurst != 12 || o.minResyncPeriod != 6*time.Hour {
		t.Errorf("kube flags = %q %g %d %v", o.master, o.kubeAPIQPS, o.kubeAPIBurst, o.minResyncPeriod)
	}
	if len(o.cloudConfigs) != 2 || o.additionalTopology["topology.kubernetes.io/region"] != "RegionTwo" {
		t.Errorf("cloud configs %q, additional topology %v", o.cloudConfigs, o.additionalTopology)
	}
}

func TestKubeClientFlags(t *testing.T) {
	o := parse(t, []string{"--master=https://10.0.0.1:6443", "--kube-api-qps=7", "--kube-api-burst=12"})
	rc, err := restConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://10.0.0.1:6443" || rc.QPS != 7 || rc.Burst != 12 {
		t.Errorf("rest config host %q qps %g burst %d", rc.Host, rc.QPS, rc.Burst)
	}
	// Defaults are the reference plugin's: 5 and 10.
	o = parse(t, []string{"--master=https://10.0.0.1:6443"})
	if rc, err = restConfig(o); err != nil || rc.QPS != 5 || rc.Burst != 10 {
		t.Errorf("default rest config qps %g burst %d, %v", rc.QPS, rc.Burst, err)
	}
	o = parse(t, []string{"--provide-controller-service=false", "--kube-api-qps=0"})
	if err := o.validate(); err == nil {
		t.Error("--kube-api-qps=0 passed validation")
	}
}

func TestKubeletRootDirFlag(t *testing.T) {
	o := parse(t, nil)
	if o.kubeletRootDir != "/var/lib/kubelet" {
		t.Errorf("default --kubelet-root-dir = %q, want kubelet's default /var/lib/kubelet", o.kubeletRootDir)
	}
	o = parse(t, []string{"--provide-controller-service=false", "--kubelet-root-dir=/data/kubelet"})
	if err := o.validate(); err != nil || o.kubeletRootDir != "/data/kubelet" {
		t.Errorf("--kubelet-root-dir=/data/kubelet: %q, %v", o.kubeletRootDir, err)
	}
	o = parse(t, []string{"--provide-controller-service=false", "--kubelet-root-dir=var/lib/kubelet"})
	if err := o.validate(); err == nil {
		t.Error("a relative --kubelet-root-dir passed validation")
	}
}
