package main

import (
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/pkg/csi/pluginmain"
)

// The reference Manila plugin's flags as its chart passes them: an operator
// swapping the image keeps the container args.
var referenceArgs = []string{
	"--v=5",
	"--nodeid=node-1", "--nodeaz=nova",
	"--endpoint=unix:///var/lib/kubelet/plugins/manila.csi.openstack.org/csi.sock",
	"--drivername=manila.csi.openstack.org",
	"--share-protocol-selector=NFS",
	"--fwdendpoint=unix:///var/lib/kubelet/plugins/csi-nfsplugin/csi.sock",
	"--runtime-config-file=/runtimeconfig/runtimeconfig.json",
	"--with-topology", "--cluster-id=kubernetes", "--user-agent=acme/1.0",
	"--provide-controller-service=true", "--provide-node-service=false",
	"--pvc-annotations", "--compatibility-settings=CreateShareFromSnapshotEnabled=true",
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
	if o.protocolSelector != "NFS" || !o.withTopology || o.clusterID != "kubernetes" || o.provideNode {
		t.Errorf("parsed %+v", o)
	}
	w := strings.Join(o.warnings(), "\n")
	for _, flagName := range []string{"--fwdendpoint", "--nodeid", "--nodeaz", "--compatibility-settings"} {
		if !strings.Contains(w, flagName) {
			t.Errorf("no warning for %s in %q", flagName, w)
		}
	}
}

func TestBadFlagValuesAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--share-protocol-selector=SMB"},
		{"--cephx-key-delivery=env"},
		{"--endpoint=/csi.sock"},
		{"--provide-controller-service=false", "--provide-node-service=false"},
		{"--kube-api-qps=0"},
	} {
		if err := parse(t, args).validate(); err == nil {
			t.Errorf("%q passed validation", args)
		}
	}
}
