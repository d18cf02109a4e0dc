package manilanode

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/metadata"
)

func TestNodeIDIsTheNameThenTheAddresses(t *testing.T) {
	many := make([]string, 0, 40)
	for i := range 40 {
		many = append(many, "fd00:1234:5678:9abc::"+strings.Repeat("f", 1+i%3))
	}
	cases := []struct {
		name        string
		addrs       []string
		want        string
		wantDropped int
	}{
		{"no addresses", nil, "node-1", 0},
		{"one IPv4", []string{"10.0.0.10"}, "node-1/10.0.0.10", 0},
		{"IPv4 and IPv6", []string{"10.0.0.10", "2001:db8::5"}, "node-1/10.0.0.10,2001:db8::5", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, dropped := NodeID("node-1", c.addrs)
			if got != c.want || len(dropped) != c.wantDropped {
				t.Fatalf("NodeID = %q dropped %v, want %q", got, dropped, c.want)
			}
			name, addrs := ParseNodeID(got)
			if name != "node-1" || !slices.Equal(addrs, c.addrs) {
				t.Fatalf("ParseNodeID(%q) = %q %q", got, name, addrs)
			}
		})
	}
	got, dropped := NodeID("node-1", many)
	if len(got) > maxNodeIDLength || len(dropped) == 0 {
		t.Fatalf("NodeID of 40 addresses is %d bytes, dropped %d", len(got), len(dropped))
	}
	_, kept := ParseNodeID(got)
	if len(kept)+len(dropped) != len(many) || !slices.Equal(kept, many[:len(kept)]) {
		t.Fatalf("kept %d + dropped %d of %d, not a prefix", len(kept), len(dropped), len(many))
	}
}

func TestNodeGetInfoReportsTheAddressesAndTheZone(t *testing.T) {
	md := &fakeMetadata{md: &metadata.Metadata{UUID: "u", AvailabilityZone: "nova zone"}}
	cases := []struct {
		name     string
		opts     NodeOptions
		wantID   string
		wantZone string
		code     codes.Code
	}{
		{"addresses from the flag", NodeOptions{NodeAddresses: []string{"192.0.2.1", "2001:db8::1"}}, "node-1/192.0.2.1,2001:db8::1", "", codes.OK},
		{"empty address list", NodeOptions{NodeAddresses: []string{}}, "node-1", "", codes.OK},
		{"zone from the metadata", NodeOptions{NodeAddresses: []string{}, WithTopology: true, Metadata: md}, "node-1", "nova-zone", codes.OK},
		{"zone from the flag wins", NodeOptions{NodeAddresses: []string{}, WithTopology: true, Metadata: md, Zone: "az2"}, "node-1", "az2", codes.OK},
		{"topology without a zone source", NodeOptions{NodeAddresses: []string{}, WithTopology: true}, "", "", codes.FailedPrecondition},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.NodeName, c.opts.KubeletRootDir, c.opts.Mounter = "node-1", t.TempDir(), &fakeMounter{}
			ns, err := NewNodeServer(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ns.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
			if c.code != codes.OK {
				wantCode(t, err, c.code, "zone")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetNodeId() != c.wantID || resp.GetAccessibleTopology().GetSegments()[TopologyKey] != c.wantZone {
				t.Fatalf("got %q %v", resp.GetNodeId(), resp.GetAccessibleTopology())
			}
		})
	}
}

func TestDetectedAddressesAreNeitherLoopbackNorLinkLocal(t *testing.T) {
	addrs, err := detectAddresses()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a, "127.") || a == "::1" || strings.HasPrefix(a, "fe80:") || strings.HasPrefix(a, "169.254.") {
			t.Errorf("detected %s", a)
		}
		if strings.ContainsAny(a, "/,") {
			t.Errorf("address %q has a separator of the node id", a)
		}
	}
}

func TestNewNodeServerRefusesBadNamesAndAddresses(t *testing.T) {
	for _, opts := range []NodeOptions{
		{NodeName: ""},
		{NodeName: "a/b"},
		{NodeName: "n", NodeAddresses: []string{"not-an-ip"}},
		{NodeName: "n", NodeAddresses: []string{"fe80::1%eth0"}},
		{NodeName: "n", KubeletRootDir: "/"},
		{NodeName: "n", DefaultProtocol: "CIFS"},
	} {
		if opts.KubeletRootDir == "" {
			opts.KubeletRootDir = t.TempDir()
		}
		if _, err := NewNodeServer(opts); err == nil {
			t.Errorf("NewNodeServer(%+v) succeeded", opts)
		}
	}
}

type fakeMetadata struct{ md *metadata.Metadata }

func (f *fakeMetadata) Get(context.Context) (*metadata.Metadata, error) { return f.md, nil }
