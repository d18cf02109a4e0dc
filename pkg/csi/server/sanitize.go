package server

import (
	"encoding/json"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Stripped replaces every secret value in a logged message.
const Stripped = "***stripped***"

// StripSecrets returns a copy of m in which every field marked with the CSI
// `csi_secret` field option, at any depth, is replaced: string values (map
// values included) become Stripped, anything else is cleared. Map keys are
// kept: they name the secrets ("cloud", "password") and are not secret
// themselves. m itself is not changed.
//
// This follows kubernetes-csi/csi-lib-utils/protosanitizer, but walks the
// descriptor with protoreflect instead of adding that module (and its
// go-protobuf v1 shim) as a dependency for forty lines.
func StripSecrets(m proto.Message) proto.Message {
	if m == nil {
		return nil
	}
	c := proto.Clone(m)
	stripMessage(c.ProtoReflect())
	return c
}

func isSecret(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil {
		return false
	}
	secret, _ := proto.GetExtension(opts, csi.E_CsiSecret).(bool)
	return secret
}

func stripMessage(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	// Collect first: mutating a message inside its own Range is undefined.
	type field struct {
		fd protoreflect.FieldDescriptor
		v  protoreflect.Value
	}
	var fields []field
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fields = append(fields, field{fd, v})
		return true
	})
	for _, f := range fields {
		fd, v := f.fd, f.v
		if isSecret(fd) {
			redact(m, fd, v)
			continue
		}
		if fd.IsMap() && fd.Name() == "publish_context" {
			redactPublishContext(v.Map())
			continue
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					stripMessage(mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				list := v.List()
				for i := 0; i < list.Len(); i++ {
					stripMessage(list.Get(i).Message())
				}
			}
		case fd.Message() != nil:
			stripMessage(v.Message())
		}
	}
}

// SecretPublishContextKeys are publish_context entries that carry a
// credential although the spec does not mark publish_context secret: the
// Manila controller's cephx key with --cephx-key-delivery=publish-context.
var SecretPublishContextKeys = map[string]bool{"userKey": true}

func redactPublishContext(m protoreflect.Map) {
	var secret []protoreflect.MapKey
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		if SecretPublishContextKeys[k.String()] {
			secret = append(secret, k)
		}
		return true
	})
	for _, k := range secret {
		m.Set(k, protoreflect.ValueOfString(Stripped))
	}
}

func redact(m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	stripped := protoreflect.ValueOfString(Stripped)
	switch {
	case fd.IsMap() && fd.MapValue().Kind() == protoreflect.StringKind:
		redacted := m.NewField(fd).Map()
		v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			redacted.Set(k, stripped)
			return true
		})
		m.Set(fd, protoreflect.ValueOfMap(redacted))
	case fd.IsList() && fd.Kind() == protoreflect.StringKind:
		redacted := m.NewField(fd).List()
		for i := 0; i < v.List().Len(); i++ {
			redacted.Append(stripped)
		}
		m.Set(fd, protoreflect.ValueOfList(redacted))
	case !fd.IsMap() && !fd.IsList() && fd.Kind() == protoreflect.StringKind:
		m.Set(fd, stripped)
	default:
		m.Clear(fd)
	}
}

// sanitized formats a message for a log line with its secrets stripped. It
// formats only when the line is actually written, so a call logged at a
// disabled verbosity costs nothing.
type sanitized struct{ msg any }

// String is what klog's text format prints.
func (s sanitized) String() string { return string(s.json()) }

// MarshalLog lets a JSON log sink nest the message as an object.
func (s sanitized) MarshalLog() any { return json.RawMessage(s.json()) }

func (s sanitized) json() []byte {
	m, ok := s.msg.(proto.Message)
	if !ok || m == nil {
		// Not a protobuf message: there is no descriptor telling which fields
		// are secret, so print nothing of it.
		return []byte(`"<not a protobuf message>"`)
	}
	out, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(StripSecrets(m))
	if err != nil {
		return []byte(`"<unprintable message>"`)
	}
	return out
}
