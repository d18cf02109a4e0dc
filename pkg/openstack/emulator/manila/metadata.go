package manila

import (
	"net/http"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

type metaOp int

const (
	metaGet metaOp = iota
	metaMerge
	metaReplace
	metaGetKey
	metaDeleteKey
	// metaUpdate merges like metaMerge but answers with the request's
	// items only (access rule metadata, checked on Zed).
	metaUpdate
)

// metadataCall serves the five metadata calls on md (a share's or a
// snapshot's); it reports whether md changed.
func metadataCall(q *host.Request, op metaOp, md *map[string]string) bool {
	if *md == nil {
		*md = map[string]string{}
	}
	switch op {
	case metaGet:
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"metadata": copyMap(*md)})
	case metaGetKey:
		v, ok := (*md)[q.P("key")]
		if !ok {
			host.WriteFault(q.W, http.StatusNotFound, "MetadataItemNotFound: Metadata item is not found.")
			return false
		}
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"meta": map[string]string{q.P("key"): v}})
	case metaDeleteKey:
		if _, ok := (*md)[q.P("key")]; !ok {
			host.WriteFault(q.W, http.StatusNotFound, "MetadataItemNotFound: Metadata item is not found.")
			return false
		}
		delete(*md, q.P("key"))
		q.W.WriteHeader(http.StatusOK)
		return true
	case metaMerge, metaReplace, metaUpdate:
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if !host.DecodeBody(q.W, q.R, &body) {
			return false
		}
		if body.Metadata == nil {
			badRequest(q, "Malformed request body")
			return false
		}
		for k, v := range body.Metadata {
			if k == "" || len(k) > 255 || len(v) > 1023 {
				badRequest(q, "Invalid metadata key or value.")
				return false
			}
		}
		if op == metaReplace {
			*md = map[string]string{}
		}
		for k, v := range body.Metadata {
			(*md)[k] = v
		}
		if op == metaUpdate {
			host.WriteJSON(q.W, http.StatusOK, map[string]any{"metadata": copyMap(body.Metadata)})
			return true
		}
		host.WriteJSON(q.W, http.StatusOK, map[string]any{"metadata": copyMap(*md)})
		return true
	}
	return false
}

func (s *Service) shareMetadata(op metaOp) host.Handler {
	return func(q *host.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sh := s.visibleShareLocked(q, q.P("share_id"))
		if sh == nil {
			return
		}
		if metadataCall(q, op, &sh.Metadata) {
			s.h.MarkDirty()
		}
	}
}
