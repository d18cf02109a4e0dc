package manila

import (
	"bytes"
	"io"
	"net"
	"strings"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manila/params"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// chooseExportLocation picks the path the node mounts. Admin-only paths
// are never chosen (users cannot reach them: reference #1136). For NFS a
// path whose address lies in nfs.matchExportLocationAddress wins; then a
// preferred one; then the first. It returns "" when no path qualifies.
func chooseExportLocation(locs []openstack.ExportLocation, protocol string, rc RuntimeConfig) string {
	var usable []openstack.ExportLocation
	for _, l := range locs {
		if !l.IsAdminOnly && l.Path != "" {
			usable = append(usable, l)
		}
	}
	if len(usable) == 0 {
		return ""
	}
	if match := rc.nfsMatch(); match != nil && protocol == params.ProtocolNFS {
		var matched []openstack.ExportLocation
		for _, l := range usable {
			if ip := net.ParseIP(nfsHost(l.Path)); ip != nil && match.Contains(ip) {
				matched = append(matched, l)
			}
		}
		if len(matched) == 0 {
			return ""
		}
		usable = matched
	}
	for _, l := range usable {
		if l.Preferred {
			return l.Path
		}
	}
	return usable[0].Path
}

// nfsHost returns the server part of "host:/path" or "[v6]:/path".
func nfsHost(path string) string {
	host, _, ok := strings.Cut(path, ":/")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}
