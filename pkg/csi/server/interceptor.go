package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// Log verbosity of the interceptor's lines. Errors and slow calls are
// always logged; see docs/design.md (observability).
const (
	// vCall: the end of each mutating or volume-specific call.
	vCall = 2
	// vRequest: the sanitized request at the start of each call (chatty
	// calls at vResponse).
	vRequest = 4
	// vResponse: the sanitized response, and the end of chatty calls.
	vResponse = 5
)

// chattyMethods are polled by the kubelet and the sidecars every few
// seconds; logging each at vCall would drown the calls that matter.
var chattyMethods = map[string]bool{
	"Probe":                     true,
	"GetPluginInfo":             true,
	"GetPluginCapabilities":     true,
	"ControllerGetCapabilities": true,
	"NodeGetCapabilities":       true,
	"NodeGetInfo":               true,
	"NodeGetVolumeStats":        true,
}

type interceptor struct {
	metrics       *metrics.Metrics
	slowThreshold time.Duration // negative: slow-call logging off
}

// unary wraps every CSI call: request id, context logger, panic recovery,
// logging with secrets stripped, slow-call report and metrics.
func (ic *interceptor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	method := shortMethod(info.FullMethod)
	requestID := requestIDFrom(ctx)
	ids := idsOf(req)

	kv := append([]any{"method", method, "requestID", requestID}, ids...)
	logger := klog.LoggerWithValues(klog.Background(), kv...)
	ctx = klog.NewContext(withTimings(WithRequestID(ctx, requestID)), logger)
	// Best effort: a caller that sent no id can still find ours.
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDKey, requestID))

	requestLevel := klog.Level(vRequest)
	if chattyMethods[method] {
		requestLevel = vResponse
	}
	if klogV := klog.V(requestLevel); klogV.Enabled() {
		klogV.InfoS("CSI call", append(kv, "request", sanitized{req})...)
	}

	resp, err = callRecovering(ctx, req, handler, kv)

	took := time.Since(start)
	code := status.Code(err)
	ic.metrics.ObserveRPC(method, code.String(), took)

	// CreateVolume and CreateSnapshot learn their ids from the response.
	kv = append(kv, idsOfResponse(resp)...)
	kv = append(kv, "code", code.String(), "took", took)
	slow := ic.slowThreshold >= 0 && took > ic.slowThreshold
	switch {
	case err != nil:
		klog.ErrorS(err, "CSI call failed", kv...)
	case slow:
		// Logged below with the timings.
	case chattyMethods[method]:
		klog.V(vResponse).InfoS("CSI call done", kv...)
	default:
		klog.V(vCall).InfoS("CSI call done", kv...)
	}
	if slow {
		klog.InfoS("Slow CSI call", append(kv, "threshold", ic.slowThreshold, "timings", timingList(Timings(ctx)))...)
	}
	if err == nil {
		if klogV := klog.V(vResponse); klogV.Enabled() {
			klogV.InfoS("CSI response", append(kv, "response", sanitized{resp})...)
		}
	}
	return resp, err
}

// callRecovering runs the handler and turns a panic into codes.Internal,
// logging the stack once. Neither the log nor the caller gets the panic
// value unless the runtime made it (see describePanic).
func callRecovering(ctx context.Context, req any, handler grpc.UnaryHandler, kv []any) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.ErrorS(errors.New(describePanic(r)), "CSI handler panicked", append(kv, "stack", string(debug.Stack()))...)
			resp, err = nil, status.Error(codes.Internal, "internal error: the driver panicked; see the plugin log for the stack")
		}
	}()
	return handler(ctx, req)
}

// describePanic names a panic without risking a secret: a runtime error
// ("invalid memory address or nil pointer dereference", "index out of
// range [3] with length 2") says only what went wrong, but a value passed
// to panic() by code may be built from the request, secrets included, so
// only its type is logged. The stack has the line either way.
func describePanic(r any) string {
	if re, ok := r.(runtime.Error); ok {
		return "panic: " + re.Error()
	}
	return fmt.Sprintf("panic with a %T value (withheld: it may hold request data)", r)
}

// shortMethod turns "/csi.v1.Controller/CreateVolume" into "CreateVolume".
// CSI method names are unique across the three services.
func shortMethod(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// The getters CSI requests share; each request has the ones it needs.
type (
	volumeIDGetter       interface{ GetVolumeId() string }
	nodeIDGetter         interface{ GetNodeId() string }
	snapshotIDGetter     interface{ GetSnapshotId() string }
	sourceVolumeIDGetter interface{ GetSourceVolumeId() string }
	nameGetter           interface{ GetName() string }
)

// idsOf returns the log keys identifying what a request is about.
func idsOf(req any) []any {
	var kv []any
	add := func(key, value string) {
		if value != "" {
			kv = append(kv, key, value)
		}
	}
	if r, ok := req.(volumeIDGetter); ok {
		add("volumeID", r.GetVolumeId())
	}
	if r, ok := req.(sourceVolumeIDGetter); ok {
		add("volumeID", r.GetSourceVolumeId())
	}
	if r, ok := req.(snapshotIDGetter); ok {
		add("snapshotID", r.GetSnapshotId())
	}
	if r, ok := req.(nodeIDGetter); ok {
		add("nodeID", r.GetNodeId())
	}
	if r, ok := req.(nameGetter); ok {
		add("name", r.GetName())
	}
	return kv
}

// idsOfResponse returns the ids a creating call learned.
func idsOfResponse(resp any) []any {
	switch r := resp.(type) {
	case *csi.CreateVolumeResponse:
		if id := r.GetVolume().GetVolumeId(); id != "" {
			return []any{"volumeID", id}
		}
	case *csi.CreateSnapshotResponse:
		if id := r.GetSnapshot().GetSnapshotId(); id != "" {
			return []any{"snapshotID", id}
		}
	}
	return nil
}

// timingList renders phases as "name=took" pairs for one log value.
type timingList []Timing

func (t timingList) String() string {
	parts := make([]string, len(t))
	for i, p := range t {
		parts[i] = p.Name + "=" + p.Took.String()
	}
	return strings.Join(parts, " ")
}

// MarshalLog nests the phases as an object in JSON logs.
func (t timingList) MarshalLog() any {
	out := make(map[string]string, len(t))
	for _, p := range t {
		out[p.Name] = p.Took.String()
	}
	return out
}
