package server

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/logging"
)

const secretMarker = "SECRET-MARKER-7f3a9c"

// fillSecrets sets every csi_secret field of m (top level) to the marker
// and reports how many it set.
func fillSecrets(m protoreflect.Message) int {
	n := 0
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !isSecret(fd) {
			continue
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			mp.Set(protoreflect.ValueOfString("password").MapKey(), protoreflect.ValueOfString(secretMarker))
			mp.Set(protoreflect.ValueOfString("cloud").MapKey(), protoreflect.ValueOfString(secretMarker+"-cloud"))
		case fd.Kind() == protoreflect.StringKind && !fd.IsList():
			m.Set(fd, protoreflect.ValueOfString(secretMarker))
		default:
			continue
		}
		n++
	}
	return n
}

// Every CSI message with a secret field, found through the csi_secret
// option itself, so a field added by a future spec is covered too.
func TestStripSecretsCoversEverySecretFieldOfTheSpec(t *testing.T) {
	messages := 0
	csi.File_csi_proto.Messages() // make sure the file is registered
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Path() != csi.File_csi_proto.Path() {
			return true
		}
		msg := mt.New()
		if fillSecrets(msg) == 0 {
			return true
		}
		messages++
		original := proto.Clone(msg.Interface())
		out, err := protojson.Marshal(StripSecrets(msg.Interface()))
		if err != nil {
			t.Fatalf("%s: %v", mt.Descriptor().FullName(), err)
		}
		if bytes.Contains(out, []byte(secretMarker)) {
			t.Errorf("%s: secret survived stripping: %s", mt.Descriptor().FullName(), out)
		}
		if !bytes.Contains(out, []byte(Stripped)) {
			t.Errorf("%s: no %s placeholder: %s", mt.Descriptor().FullName(), Stripped, out)
		}
		if !proto.Equal(original, msg.Interface()) {
			t.Errorf("%s: StripSecrets changed its argument", mt.Descriptor().FullName())
		}
		return true
	})
	// CSI 1.13 marks secrets on 15+ requests (create/delete volume, publish,
	// stage, expand, snapshots, modify, ...). Far fewer means the option
	// lookup is broken, not that the spec lost its secrets.
	if messages < 12 {
		t.Fatalf("found secret fields in only %d CSI messages; the csi_secret lookup is broken", messages)
	}
}

func TestStripSecretsKeepsEverythingElse(t *testing.T) {
	req := &csi.CreateVolumeRequest{
		Name:       "pvc-1",
		Parameters: map[string]string{"type": "ssd"},
		Secrets:    map[string]string{"password": secretMarker},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snap-1"},
		}},
	}
	got := StripSecrets(req).(*csi.CreateVolumeRequest)
	want := &csi.CreateVolumeRequest{
		Name:                "pvc-1",
		Parameters:          map[string]string{"type": "ssd"},
		Secrets:             map[string]string{"password": Stripped},
		VolumeContentSource: req.VolumeContentSource,
	}
	if !proto.Equal(got, want) {
		t.Errorf("StripSecrets = %v, want %v", got, want)
	}
	if StripSecrets(nil) != nil {
		t.Error("StripSecrets(nil) != nil")
	}
	if s := (sanitized{msg: struct{ Password string }{secretMarker}}).String(); strings.Contains(s, secretMarker) {
		t.Errorf("a non-protobuf value was printed: %s", s)
	}
}

// The plugin at the highest verbosity, text and JSON formats, through a
// success, a failure and a panic: the marker never reaches the log, the
// error or the caller.
func TestSecretsNeverReachTheLog(t *testing.T) {
	ctrl := &fakeController{createVolume: func(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
		switch req.GetName() {
		case "pvc-panic":
			panic("handler panicked while holding " + req.GetSecrets()["password"])
		case "pvc-fail":
			return nil, status.Error(codes.Unavailable, "cinder is busy")
		}
		return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: "vol-1", CapacityBytes: 1 << 30}}, nil
	}}
	node := &fakeNode{stage: func(context.Context, *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
		return &csi.NodeStageVolumeResponse{}, nil
	}}
	_, conn := startServer(t, Options{Controller: ctrl, Node: node, SlowThreshold: 1})
	secrets := map[string]string{"password": secretMarker, "application-credential-secret": secretMarker}

	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var jsonOut syncBuffer
			if format == "json" {
				klog.SetLogger(logging.NewJSONLogger(&jsonOut))
				defer klog.ClearLogger()
			}
			logs.Reset()
			var errs []string
			for _, name := range []string{"pvc-ok", "pvc-fail", "pvc-panic"} {
				_, err := csi.NewControllerClient(conn).CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, Secrets: secrets})
				if err != nil {
					errs = append(errs, err.Error())
				}
			}
			_, err := csi.NewNodeClient(conn).NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
				VolumeId: "vol-1", StagingTargetPath: "/staging", Secrets: secrets,
				VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			out := logs.String() + jsonOut.String()
			if strings.Contains(out, secretMarker) {
				t.Errorf("a secret reached the log:\n%s", out)
			}
			for _, e := range errs {
				if strings.Contains(e, secretMarker) {
					t.Errorf("a secret reached an error: %s", e)
				}
			}
			if len(errs) != 2 {
				t.Errorf("errors = %v, want the failure and the panic", errs)
			}
			// The requests were logged, with the secret names but not their values.
			for _, want := range []string{Stripped, "application-credential-secret", "CSI handler panicked"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			if format == "json" && !strings.Contains(out, `"request":{"name":"pvc-ok"`) {
				t.Errorf("JSON log does not nest the request as an object:\n%s", out)
			}
		})
	}
}

func TestStripSecretsRedactsTheCephxKeyInPublishContexts(t *testing.T) {
	pc := map[string]string{"userKey": "AQBxV1xlAAAAABAAm5Zz0pJ8k3Yt4sQxVb7nGg==", "exportLocation": "m:6789:/v"}
	for _, m := range []proto.Message{
		&csi.ControllerPublishVolumeResponse{PublishContext: pc},
		&csi.NodeStageVolumeRequest{PublishContext: pc},
		&csi.NodePublishVolumeRequest{PublishContext: pc},
	} {
		out := string(sanitized{m}.json())
		if strings.Contains(out, pc["userKey"]) || !strings.Contains(out, "m:6789:/v") || !strings.Contains(out, Stripped) {
			t.Errorf("%T logged as %s", m, out)
		}
	}
	if pc["userKey"] == Stripped {
		t.Fatal("the caller's map was changed")
	}
}
