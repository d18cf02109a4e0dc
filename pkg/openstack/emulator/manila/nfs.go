package manila

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	billy "github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// The NFS export: with Options.NFSListen set, the service serves every NFS
// share's directory over NFSv3 (github.com/willscott/go-nfs; its MOUNT
// protocol runs on the same port as NFS, so a client mounts with
// vers=3,proto=tcp,port=P,mountport=P,mountproto=tcp,nolock: there is no
// portmapper and no lock manager). The MOUNT path is the path of the
// share's export location (the part after "host:"), so what the API
// returns is what a node mounts. Access follows the share's ip access
// rules as Ganesha applies Manila's: only a client whose address matches
// an active rule (address or CIDR) mounts, an "ro" rule gives a read-only
// export, and every later operation re-checks the rule, so a revoked rule
// or a deleted share fails the client's next call with EACCES.

// nfsHandleLimit bounds the file handles the server remembers (an LRU);
// a handle evicted from it answers ESTALE. A csi-sanity run touches a few
// hundred files; 65536 entries are a few MiB.
const nfsHandleLimit = 1 << 16

var quietNFSLog sync.Once

// nfsServer is the listener and its accepted connections, closed together.
type nfsServer struct {
	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  chan struct{}
}

// startNFS listens on addr and serves the shares' exports until Close.
func (s *Service) startNFS(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("manila: NFS export listener on %s: %w", addr, err)
	}
	// go-nfs logs every refused call (a revoked rule, an ro export) at
	// ERROR on stderr; the client sees the NFS status, which says it all.
	quietNFSLog.Do(func() { nfs.Log.SetLevel(nfs.FatalLevel) })
	srv := &nfsServer{l: l, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	s.nfs = srv
	handler := nfshelper.NewCachingHandler(&exportHandler{s: s}, nfsHandleLimit)
	go func() {
		defer close(srv.done)
		_ = nfs.Serve(trackedListener{srv}, handler)
	}()
	return nil
}

// NFSAddr is the address the NFS export listens on ("" when it does not):
// its port is what a client passes as port= and mountport=.
func (s *Service) NFSAddr() string {
	if s.nfs == nil {
		return ""
	}
	return s.nfs.l.Addr().String()
}

func (n *nfsServer) close() {
	_ = n.l.Close()
	n.mu.Lock()
	for c := range n.conns {
		_ = c.Close()
	}
	n.mu.Unlock()
	<-n.done
}

// trackedListener records each accepted connection, so close ends the
// clients' connections too (go-nfs serves each until its client leaves).
type trackedListener struct{ n *nfsServer }

func (t trackedListener) Accept() (net.Conn, error) {
	c, err := t.n.l.Accept()
	if err != nil {
		return nil, err
	}
	t.n.mu.Lock()
	t.n.conns[c] = true
	t.n.mu.Unlock()
	return trackedConn{Conn: c, n: t.n}, nil
}

func (t trackedListener) Close() error   { return t.n.l.Close() }
func (t trackedListener) Addr() net.Addr { return t.n.l.Addr() }

type trackedConn struct {
	net.Conn
	n *nfsServer
}

func (c trackedConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c.Conn)
	c.n.mu.Unlock()
	return c.Conn.Close()
}

// refusedFS is what a refused MOUNT returns: go-nfs makes a root handle
// of the file system even when the status is an error (and never sends
// it), so it must be one; every call on it is refused.
var refusedFS = &guardedFS{Filesystem: osfs.New("/nonexistent", osfs.WithBoundOS()),
	check: func(bool) error { return os.ErrPermission }}

// exportHandler answers MOUNT: which share a path is, and whether the
// client may have it.
type exportHandler struct{ s *Service }

func (h *exportHandler) Mount(_ context.Context, conn net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	client := remoteIP(conn.RemoteAddr())
	shareID, dir, ok := h.s.shareByExportPath(string(req.Dirpath))
	if !ok {
		return nfs.MountStatusErrNoEnt, refusedFS, nil
	}
	if err := h.s.nfsAccess(shareID, client, false); err != nil {
		return nfs.MountStatusErrAcces, refusedFS, nil
	}
	fs := &guardedFS{Filesystem: osfs.New(dir, osfs.WithBoundOS()), check: func(write bool) error {
		return h.s.nfsAccess(shareID, client, write)
	}, shareID: shareID}
	return nfs.MountStatusOk, fs, []nfs.AuthFlavor{nfs.AuthFlavorNull}
}

func (h *exportHandler) Change(fs billy.Filesystem) billy.Change {
	if g, ok := fs.(*guardedFS); ok {
		return g
	}
	return nil
}

// FSStat shows the share's size as the file system's size, as a CephFS
// subvolume's quota shows through Ganesha.
func (h *exportHandler) FSStat(_ context.Context, fs billy.Filesystem, st *nfs.FSStat) error {
	g, ok := fs.(*guardedFS)
	if !ok {
		return nil
	}
	if err := g.check(false); err != nil {
		return err
	}
	size, used := h.s.shareUsage(g.shareID)
	st.TotalSize, st.FreeSize, st.AvailableSize = size, size-min(used, size), size-min(used, size)
	st.TotalFiles, st.FreeFiles, st.AvailableFiles = 1<<20, 1<<20, 1<<20
	return nil
}

// The handle methods are the CachingHandler's.
func (h *exportHandler) ToHandle(billy.Filesystem, []string) []byte { return nil }
func (h *exportHandler) FromHandle([]byte) (billy.Filesystem, []string, error) {
	return nil, nil, errors.New("handles are the caching handler's")
}
func (h *exportHandler) InvalidateHandle(billy.Filesystem, []byte) error { return nil }
func (h *exportHandler) HandleLimit() int                                { return nfsHandleLimit }

func remoteIP(a net.Addr) net.IP {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP
	}
	host, _, _ := net.SplitHostPort(a.String())
	return net.ParseIP(host)
}

// shareByExportPath finds the NFS share whose export location's path is
// path.
func (s *Service) shareByExportPath(path string) (id, dir string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sh := range s.st.Shares {
		if sh.Proto != "NFS" {
			continue
		}
		for _, el := range sh.Exports {
			if i := strings.Index(el.Path, ":/"); i >= 0 && el.Path[i+1:] == path {
				return id, filepath.Join(s.sharesRoot(), id), true
			}
		}
	}
	return "", "", false
}

// nfsAccess says whether client may read (or, with write, change) the
// share: os.ErrPermission when no active ip rule matches it, or when it
// needs to write and only "ro" rules match; os.ErrNotExist when the share
// is gone.
func (s *Service) nfsAccess(shareID string, client net.IP, write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Shares[shareID]; !ok {
		return os.ErrNotExist
	}
	readable := false
	for _, r := range s.st.Access {
		if r.ShareID != shareID || r.Type != "ip" || r.State != "active" || !ipMatches(r.To, client) {
			continue
		}
		if r.Level == "rw" {
			return nil
		}
		readable = true
	}
	if !readable || write {
		return os.ErrPermission
	}
	return nil
}

// ipMatches: to is an address or a CIDR (what the API accepted).
func ipMatches(to string, ip net.IP) bool {
	if ip == nil {
		return false
	}
	if _, n, err := net.ParseCIDR(to); err == nil {
		return n.Contains(ip)
	}
	a := net.ParseIP(to)
	return a != nil && a.Equal(ip)
}

// shareUsage returns the share's size and the bytes its directory holds.
func (s *Service) shareUsage(shareID string) (size, used uint64) {
	s.mu.Lock()
	sh := s.st.Shares[shareID]
	if sh == nil {
		s.mu.Unlock()
		return 0, 0
	}
	size, dir := uint64(sh.Size)<<30, filepath.Join(s.sharesRoot(), shareID)
	s.mu.Unlock()
	return size, uint64(usedBytes(dir))
}
