package params

import (
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	v, err := ParseVolume(map[string]string{
		"type": "cephfstype", "protocol": "cephfs", "shareNetworkID": "net", "availability": "az1", "autoTopology": "true",
		"appendShareMetadata": `{"team":"storage"}`, "groupID": "g", "cephfs-mounter": "kernel", "cephfs-clientID": "alice",
		"cephfs-kernelMountOptions": "noatime", "cephfs-fuseMountOptions": "x", "nfs-shareClient": "10.0.0.0/24, 10.1.0.1",
		"nfs-mountOptions": "hard", "nfsVersion": "4.1", KeyPVCName: "claim", KeyPVCNamespace: "ns", KeyPVName: "pv",
		"csi.storage.k8s.io/provisioner-secret-name": "s", KeyNodeStageSecretNamespace: "secrets",
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.Protocol != ProtocolCephFS || !v.AutoTopology || v.AppendMetadata["team"] != "storage" || v.CephFS.Mounter != MounterKernel ||
		len(v.NFS.ShareClients) != 2 || v.PVName != "pv" || v.SecretNamespace != "secrets" {
		t.Errorf("parsed %+v", v)
	}
	if d, _ := ParseVolume(nil); d.CephFS.Mounter != MounterFuse {
		t.Errorf("default mounter %q, want fuse like the reference", d.CephFS.Mounter)
	}
}

func TestParseVolumeNamesEachBadKey(t *testing.T) {
	tests := map[string]map[string]string{
		"availabilty":         {"availabilty": "az"},
		"protocol":            {"protocol": "smb"},
		"autoTopology":        {"autoTopology": "yes"},
		"appendShareMetadata": {"appendShareMetadata": `{"a":1}`},
		"cephfs-mounter":      {"cephfs-mounter": "nfs"},
		"cephfs-clientID":     {"cephfs-clientID": "a b"},
		"nfs-shareClient":     {"nfs-shareClient": "0.0.0.0/33"},
		"nfsVersion":          {"nfsVersion": "5"},
	}
	for key, in := range tests {
		t.Run(key, func(t *testing.T) {
			_, err := ParseVolume(in)
			if !IsInvalid(err) || !strings.Contains(err.Error(), key) {
				t.Errorf("got %v, want an error naming %q", err, key)
			}
		})
	}
}

func TestParseSnapshotTakesOnlySidecarKeys(t *testing.T) {
	if _, err := ParseSnapshot(map[string]string{KeySnapshotName: "s", "csi.storage.k8s.io/snapshotter-secret-name": "x"}); err != nil {
		t.Error(err)
	}
	if _, err := ParseSnapshot(map[string]string{"force-create": "true"}); !IsInvalid(err) {
		t.Errorf("force-create accepted: %v", err)
	}
}

func TestVolumeContextRoundTrips(t *testing.T) {
	vc := &VolumeContext{ShareID: "s1", Protocol: ProtocolCephFS, ExportLocation: "m:6789:/v", FSName: "cephfs",
		CephFS: CephFS{Mounter: MounterKernel, ClientID: "alice", KernelMountOptions: "noatime"}}
	got, err := ParseVolumeContext(vc.Map())
	if err != nil {
		t.Fatal(err)
	}
	if got.ShareID != "s1" || got.CephFS != vc.CephFS || got.FSName != "cephfs" || got.ExportLocation != vc.ExportLocation {
		t.Errorf("round trip %+v", got)
	}
}

// TestVolumeContextFromProvisionedPV: a dynamically provisioned PV's
// attributes, as csi-attacher passes them to ControllerPublishVolume,
// carry csi-provisioner's identity besides what CreateVolume returned.
func TestVolumeContextFromProvisionedPV(t *testing.T) {
	in := (&VolumeContext{ShareID: "s1", Protocol: ProtocolNFS, ExportLocation: "10.0.0.1:/share"}).Map()
	in[ProvisionerIdentityKey] = "1764637200000-8081-manila.csi.openstack.org"
	vc, err := ParseVolumeContext(in)
	if err != nil || vc.ShareID != "s1" {
		t.Fatalf("%+v, %v", vc, err)
	}
	in["storage.kubernetes.io/other"] = "x"
	if _, err := ParseVolumeContext(in); !IsInvalid(err) {
		t.Errorf("an unknown storage.kubernetes.io/ key was accepted: %v", err)
	}
}

func TestStaticVolumeContext(t *testing.T) {
	vc, err := ParseVolumeContext(map[string]string{"shareName": "legacy", "shareAccessID": "r1,r2"})
	if err != nil {
		t.Fatal(err)
	}
	if vc.ShareName != "legacy" || len(vc.ShareAccessIDs) != 2 {
		t.Errorf("%+v", vc)
	}
	if _, err := ParseVolumeContext(map[string]string{"shareName": "a", "shareID": "b"}); !IsInvalid(err) {
		t.Errorf("both shareID and shareName accepted")
	}
}

func FuzzParseVolumeContext(f *testing.F) {
	f.Add("shareID", "x", "cephfs-mounter", "fuse")
	f.Add("nfs-shareClient", "10.0.0.0/8", "protocol", "nfs")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		vc, err := ParseVolumeContext(map[string]string{k1: v1, k2: v2})
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if _, err := ParseVolumeContext(vc.Map()); err != nil && vc.Protocol != "" {
			t.Fatalf("a parsed context does not parse again: %v", err)
		}
	})
}
