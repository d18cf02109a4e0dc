package cloudcode

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func TestForKindMapsEveryKindToItsRetryMeaning(t *testing.T) {
	phrases := []string{"no valid host"}
	for _, tc := range []struct {
		name string
		err  *openstack.Error
		want codes.Code
	}{
		{"not found is final", &openstack.Error{Kind: openstack.KindNotFound}, codes.NotFound},
		{"conflict is retried", &openstack.Error{Kind: openstack.KindConflict}, codes.Aborted},
		{"quota is capacity", &openstack.Error{Kind: openstack.KindOverQuota}, codes.ResourceExhausted},
		{"rate limit is retried", &openstack.Error{Kind: openstack.KindRateLimited}, codes.Unavailable},
		{"bad request is invalid", &openstack.Error{Kind: openstack.KindBadRequest}, codes.InvalidArgument},
		{"forbidden is denied", &openstack.Error{Kind: openstack.KindForbidden}, codes.PermissionDenied},
		{"timeout is retried", &openstack.Error{Kind: openstack.KindTimeout}, codes.Aborted},
		{"config needs the operator", &openstack.Error{Kind: openstack.KindConfig}, codes.FailedPrecondition},
		{"error state with a capacity phrase", &openstack.Error{Kind: openstack.KindErrorState, Message: "No valid host was found"}, codes.ResourceExhausted},
		{"error state otherwise", &openstack.Error{Kind: openstack.KindErrorState, Message: "backend crashed"}, codes.Unavailable},
		{"context deadline keeps its meaning", &openstack.Error{Err: context.DeadlineExceeded}, codes.DeadlineExceeded},
		{"unknown is internal", &openstack.Error{}, codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ForKind(tc.err, phrases); got != tc.want {
				t.Errorf("ForKind = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStatusKeepsAStatusCodeUnlessRecoded(t *testing.T) {
	internal := func(error) codes.Code { return codes.Internal }
	st := status.Error(codes.NotFound, "gone")
	if got := status.Code(Status(internal, false, st, "deleting %s", "x")); got != codes.NotFound {
		t.Errorf("kept code = %v, want NotFound", got)
	}
	if got := status.Code(Status(internal, true, st, "deleting %s", "x")); got != codes.Internal {
		t.Errorf("recoded = %v, want Internal", got)
	}
	if got := status.Convert(Status(internal, false, fmt.Errorf("boom"), "deleting %s", "x")).Message(); got != "deleting x: boom" {
		t.Errorf("message = %q", got)
	}
	if Status(internal, false, nil, "x") != nil {
		t.Error("nil error gave a status")
	}
}
