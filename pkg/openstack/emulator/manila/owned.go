package manila

import (
	"net/http"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/host"
)

// ownedLocked returns items[id] when it belongs to q's project; otherwise
// it answers 404 with fault ("" for Manila's bare one) and returns nil: a
// project never sees another's resources.
func ownedLocked[E any, P interface {
	*E
	project() string
}](q *host.Request, items map[string]P, id, fault string) P {
	it := items[id]
	if it == nil || it.project() != q.ProjectID {
		if fault == "" {
			notFound(q)
		} else {
			host.WriteFault(q.W, http.StatusNotFound, fault)
		}
		return nil
	}
	return it
}

func (sh *share) project() string       { return sh.ProjectID }
func (sn *snapshot) project() string    { return sn.ProjectID }
func (r *accessRule) project() string   { return r.ProjectID }
func (m *message) project() string      { return m.ProjectID }
func (n *shareNetwork) project() string { return n.ProjectID }
