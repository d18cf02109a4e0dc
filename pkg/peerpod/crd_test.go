package peerpod

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestStandInCRDMatchesWhatWeRead: the test-only PeerPod CRD serves the
// resource the Locator lists, with the field it reads, and says it is a
// stand-in.
func TestStandInCRDMatchesWhatWeRead(t *testing.T) {
	data, err := os.ReadFile("../../tests/e2e/k8s/testdata/peerpod-crd-standin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Metadata struct {
			Name        string
			Annotations map[string]string
		}
		Spec struct {
			Group string
			Names struct{ Plural, Kind string }
			Scope string
			// Versions[].Schema is only checked for the field name below.
			Versions []struct{ Name string }
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	s := crd.Spec
	if s.Group != PeerPodGVR.Group || s.Names.Plural != PeerPodGVR.Resource || len(s.Versions) != 1 || s.Versions[0].Name != PeerPodGVR.Version || s.Scope != "Namespaced" {
		t.Fatalf("stand-in CRD %+v does not serve %v", s, PeerPodGVR)
	}
	if !strings.Contains(string(data), "instanceID:") || !strings.Contains(crd.Metadata.Annotations["cinder.csi.openstack.org/stand-in"], "not cloud-api-adaptor") {
		t.Fatal("stand-in CRD lacks spec.instanceID or its stand-in marking")
	}
}
