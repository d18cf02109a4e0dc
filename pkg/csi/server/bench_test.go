package server

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// The interceptor's cost per call at the default verbosity (-v=2) and at
// -v=5, where requests and responses are stripped and formatted.
func BenchmarkInterceptor(b *testing.B) {
	req := &csi.ControllerPublishVolumeRequest{
		VolumeId: "3f1c2d6e-0b7a-4a57-9d3c-5a2f6a1e9b10", NodeId: "node-1",
		Secrets:          map[string]string{"password": "x", "cloud": "y"},
		VolumeContext:    map[string]string{"a": "b"},
		VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}}},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Controller/ControllerPublishVolume"}
	handler := func(context.Context, any) (any, error) {
		return &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{"DevicePath": "/dev/vdb"}}, nil
	}
	ic := &interceptor{metrics: metrics.New(), slowThreshold: DefaultSlowThreshold}
	for _, v := range []string{"2", "5"} {
		b.Run("v="+v, func(b *testing.B) {
			_ = klogFlags.Set("v", v)
			defer func() { _ = klogFlags.Set("v", "10") }()
			for b.Loop() {
				logs.Reset()
				if _, err := ic.unary(context.Background(), req, info, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
