package manila

import (
	"errors"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func TestSizeFromRangeRoundsUpToWholeGiB(t *testing.T) {
	tests := []struct {
		name        string
		req, lim    int64
		size, limit int
		code        codes.Code
	}{
		{"empty range is the default", 0, 0, 1, 0, codes.OK},
		{"one byte is one GiB", 1, 0, 1, 0, codes.OK},
		{"rounds up", gib + 1, 0, 2, 0, codes.OK},
		{"limit only", 0, 10 * gib, 1, 10, codes.OK},
		{"exact fit", 3 * gib, 3 * gib, 3, 3, codes.OK},
		{"no whole GiB fits", gib + 1, gib + 100, 0, 0, codes.OutOfRange},
		{"required above limit", 2 * gib, gib, 0, 0, codes.InvalidArgument},
		{"negative", -1, 0, 0, 0, codes.InvalidArgument},
		{"beyond 32-bit GiB", 1 << 62, 0, 0, 0, codes.OutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, limit, err := sizeFromRange(&csi.CapacityRange{RequiredBytes: tt.req, LimitBytes: tt.lim}, 1)
			if codeOf(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
			if err == nil && (size != tt.size || limit != tt.limit) {
				t.Errorf("got %d/%d GiB, want %d/%d", size, limit, tt.size, tt.limit)
			}
		})
	}
}

func TestChooseExportLocation(t *testing.T) {
	locs := []openstack.ExportLocation{
		{Path: "172.16.0.9:/admin", IsAdminOnly: true, Preferred: true},
		{Path: "10.0.0.5:/a"},
		{Path: "192.168.0.5:/b", Preferred: true},
		{Path: "[fd00::5]:/c"},
	}
	match := func(cidr string) RuntimeConfig {
		rc, err := ParseRuntimeConfig([]byte(`{"nfs":{"matchExportLocationAddress":"` + cidr + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	tests := []struct {
		name     string
		protocol string
		rc       RuntimeConfig
		want     string
	}{
		{"preferred, never admin-only", params.ProtocolNFS, RuntimeConfig{}, "192.168.0.5:/b"},
		{"the runtime CIDR wins over preferred", params.ProtocolNFS, match("10.0.0.0/8"), "10.0.0.5:/a"},
		{"IPv6 CIDR", params.ProtocolNFS, match("fd00::/64"), "[fd00::5]:/c"},
		{"no match is none", params.ProtocolNFS, match("10.9.0.0/16"), ""},
		{"the CIDR is for NFS only", params.ProtocolCephFS, match("10.0.0.0/8"), "192.168.0.5:/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chooseExportLocation(locs, tt.protocol, tt.rc); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := chooseExportLocation(locs[:1], params.ProtocolNFS, RuntimeConfig{}); got != "" {
		t.Errorf("only an admin path: got %q", got)
	}
}

func TestRuntimeConfigRejectsUnknownFieldsAndBadCIDRs(t *testing.T) {
	for _, doc := range []string{`{"nfs":{"matchExportLocation":"10.0.0.0/8"}}`, `{"nfs":{"matchExportLocationAddress":"10.0.0.1"}}`, `[`} {
		if _, err := ParseRuntimeConfig([]byte(doc)); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		id    string
		name  string
		addrs []string
		bad   bool
	}{
		{"node-a", "node-a", nil, false},
		{"node-a/10.0.0.1", "node-a", []string{"10.0.0.1"}, false},
		{"node-a/10.0.0.1,FD00::1", "node-a", []string{"10.0.0.1", "fd00::1"}, false},
		{"/10.0.0.1", "", nil, true},
		{"node-a/host.example", "", nil, true},
		{"", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			n, problem := parseNodeID(tt.id)
			if (problem != "") != tt.bad {
				t.Fatalf("problem %q, want bad=%v", problem, tt.bad)
			}
			if tt.bad {
				return
			}
			if n.Name != tt.name || len(n.Addresses) != len(tt.addrs) {
				t.Fatalf("got %+v", n)
			}
			for i := range tt.addrs {
				if n.Addresses[i] != tt.addrs[i] {
					t.Errorf("address %d = %s, want %s", i, n.Addresses[i], tt.addrs[i])
				}
			}
		})
	}
}

func TestCodeForError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"not found", &openstack.Error{Kind: openstack.KindNotFound}, codes.NotFound},
		{"quota", &openstack.Error{Kind: openstack.KindOverQuota}, codes.ResourceExhausted},
		{"timeout is retried", &openstack.Error{Kind: openstack.KindTimeout}, codes.Aborted},
		{"error state with no host", &openstack.Error{Kind: openstack.KindErrorState, Message: "No valid host was found"}, codes.ResourceExhausted},
		{"error state otherwise", &openstack.Error{Kind: openstack.KindErrorState, Message: "driver error"}, codes.Unavailable},
		{"a 403 that needs the user", needsUser(&openstack.Error{Kind: openstack.KindForbidden}), codes.FailedPrecondition},
		{"config", &openstack.Error{Kind: openstack.KindConfig}, codes.FailedPrecondition},
		{"parameter", &params.Error{Key: "k"}, codes.InvalidArgument},
		{"unknown", errors.New("?"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeForError(tt.err); got != tt.code {
				t.Errorf("got %v, want %v", got, tt.code)
			}
		})
	}
}
