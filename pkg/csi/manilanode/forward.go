package manilanode

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// forwarder hands node calls to a partner CSI driver (csi-driver-nfs or
// ceph-csi's cephfs plugin) on a local socket, translating the volume
// context into what the partner expects, as the reference plugin does.
// Connecting is bounded: a partner that is not there is Unavailable,
// naming its socket, rather than a call that hangs "still connecting"
// (reference #1653).
type forwarder struct {
	endpoint string
	timeout  time.Duration
	conn     *grpc.ClientConn
	client   csi.NodeClient
}

func newForwarder(endpoint string, timeout time.Duration) (*forwarder, error) {
	target := endpoint
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
	case strings.HasPrefix(endpoint, "/"):
		target = "unix://" + endpoint
	default:
		return nil, fmt.Errorf("node service: forward endpoint %q is not unix:///path or an absolute socket path", endpoint)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("node service: forward endpoint %q: %w", endpoint, err)
	}
	return &forwarder{endpoint: endpoint, timeout: timeout, conn: conn, client: csi.NewNodeClient(conn)}, nil
}

func (f *forwarder) close() error { return f.conn.Close() }

// ready waits, at most the connect timeout or ctx's deadline, until the
// connection is up.
func (f *forwarder) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	f.conn.Connect()
	for {
		s := f.conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !f.conn.WaitForStateChange(ctx, s) {
			return errUnavailable("the partner CSI driver at %s did not accept a connection within %s (state %s); is its node plugin running?", f.endpoint, f.timeout, s)
		}
	}
}

// call runs one forwarded call after ready, naming the partner in errors.
func forward[Req, Resp any](ctx context.Context, f *forwarder, method string, req Req, do func(context.Context, Req, ...grpc.CallOption) (Resp, error)) (Resp, error) {
	var zero Resp
	if err := f.ready(ctx); err != nil {
		return zero, err
	}
	resp, err := do(ctx, req)
	if err != nil {
		return zero, statusFromError(err, "%s forwarded to the partner CSI driver at %s", method, f.endpoint)
	}
	return resp, nil
}

func (f *forwarder) getCapabilities(ctx context.Context, req *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return forward(ctx, f, "NodeGetCapabilities", req, f.client.NodeGetCapabilities)
}

// partnerContext translates a share into the volume context, mount flags
// and secrets of the partner: csi-driver-nfs takes server and share;
// ceph-csi takes monitors, rootPath, mounter, provisionVolume=false
// (a share it must not create), fsName and the mounter's options, with the
// cephx identity as the secrets userID and userKey.
func partnerContext(spec *ShareSpec, key string) (volumeContext map[string]string, flags []string, secrets map[string]string) {
	if spec.Protocol == ProtocolNFS {
		return map[string]string{"server": spec.Export.Servers[0], "share": spec.Export.Path},
			append([]string{"vers=" + spec.NFSVersion}, spec.Options...), nil
	}
	volumeContext = map[string]string{
		"monitors":        strings.Join(spec.Export.Servers, ","),
		"rootPath":        spec.Export.Path,
		"mounter":         spec.Mounter,
		"provisionVolume": "false",
	}
	if spec.FSName != "" {
		volumeContext["fsName"] = spec.FSName
	}
	if len(spec.Options) > 0 {
		volumeContext[spec.Mounter+"MountOptions"] = strings.Join(spec.Options, ",")
	}
	if key != "" {
		secrets = map[string]string{"userID": spec.ClientID, "userKey": key}
	}
	return volumeContext, nil, secrets
}

// partnerCapability is vc with the share's mount flags.
func partnerCapability(vc *csi.VolumeCapability, flags []string) *csi.VolumeCapability {
	out := proto.Clone(vc).(*csi.VolumeCapability)
	if m := out.GetMount(); m != nil {
		m.MountFlags = flags
		m.FsType = ""
	}
	return out
}

// forwardStage translates and forwards NodeStageVolume.
func (ns *NodeServer) forwardStage(ctx context.Context, req *csi.NodeStageVolumeRequest, spec *ShareSpec) (*csi.NodeStageVolumeResponse, error) {
	key := ""
	if spec.Protocol == ProtocolCephFS {
		var err error
		if key, err = cephxKey(req.GetSecrets(), req.GetPublishContext()); err != nil {
			return nil, err
		}
	}
	vctx, flags, secrets := partnerContext(spec, key)
	out := proto.Clone(req).(*csi.NodeStageVolumeRequest)
	out.VolumeContext, out.Secrets = vctx, secrets
	out.VolumeCapability = partnerCapability(req.GetVolumeCapability(), flags)
	return forward(ctx, ns.fwd, "NodeStageVolume", out, ns.fwd.client.NodeStageVolume)
}

// forwardPublish translates and forwards NodePublishVolume. Publish has
// no stage secrets: a partner that stages (ceph-csi) took them at stage;
// one that does not (csi-driver-nfs) needs none.
func (ns *NodeServer) forwardPublish(ctx context.Context, req *csi.NodePublishVolumeRequest, spec *ShareSpec) (*csi.NodePublishVolumeResponse, error) {
	vctx, flags, _ := partnerContext(spec, "")
	out := proto.Clone(req).(*csi.NodePublishVolumeRequest)
	out.VolumeContext = vctx
	if len(req.GetSecrets()) > 0 {
		out.Secrets = maps.Clone(req.GetSecrets())
	}
	out.VolumeCapability = partnerCapability(req.GetVolumeCapability(), flags)
	return forward(ctx, ns.fwd, "NodePublishVolume", out, ns.fwd.client.NodePublishVolume)
}
