package manila_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shareaccessrules"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

// nfsShare starts an emulator serving NFS exports and makes a 1 GiB NFS
// share; it returns the client, the share, its export path and the
// listener's address.
func nfsShare(t *testing.T) (*emulator.Emulator, *gophercloud.ServiceClient, *shares.Share, string) {
	t.Helper()
	e := start(t, emulator.Options{Manila: manila.Options{NFSListen: "127.0.0.1:0"}})
	c := client(t, e, "2.73")
	sh := createShare(t, c, shares.CreateOpts{ShareProto: "NFS", Size: 1, ShareType: "cephfsnfstype"})
	els, err := shares.ListExportLocations(ctx, c, sh.ID).Extract()
	if err != nil || len(els) != 1 {
		t.Fatalf("export locations %+v %v", els, err)
	}
	host, path, ok := strings.Cut(els[0].Path, ":")
	if !ok || host != "127.0.0.1" || !strings.HasPrefix(path, "/volumes/") {
		t.Fatalf("export location %q", els[0].Path)
	}
	return e, c, sh, path
}

// nfsMount mounts path over the user-space NFSv3 client; the error is the
// MOUNT status.
func nfsMount(t *testing.T, addr, path string) (*nfsc.Target, error) {
	t.Helper()
	conn, err := rpc.DialTCP("tcp", addr, false)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(conn.Close)
	m := nfsc.Mount{Client: conn}
	return m.Mount(path, rpc.AuthNull)
}

func grantIP(t *testing.T, c *gophercloud.ServiceClient, shareID, to, level string) string {
	t.Helper()
	r, err := shares.GrantAccess(ctx, c, shareID, shares.GrantAccessOpts{AccessType: "ip", AccessTo: to, AccessLevel: level}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitRule(t, c, r.ID, is("active"))
	return r.ID
}

func TestNFSExportServesTheSharesDirectoryToClientsItsRulesAllow(t *testing.T) {
	e, c, sh, path := nfsShare(t)
	addr := e.Manila().NFSAddr()
	if _, err := nfsMount(t, addr, path); err == nil || !strings.Contains(err.Error(), "ACCES") {
		t.Fatalf("mount without an access rule: %v, want MNT3ERR_ACCES", err)
	}
	if _, err := nfsMount(t, addr, "/volumes/_nogroup/no-such-share"); err == nil || !strings.Contains(err.Error(), "NOENT") {
		t.Fatalf("mount of an unknown path: %v, want MNT3ERR_NOENT", err)
	}
	grantIP(t, c, sh.ID, "10.9.9.9", "rw")
	if _, err := nfsMount(t, addr, path); err == nil {
		t.Fatal("a rule for another address let 127.0.0.1 mount")
	}
	rule := grantIP(t, c, sh.ID, "127.0.0.0/8", "rw")
	target, err := nfsMount(t, addr, path)
	if err != nil {
		t.Fatalf("mount with a matching CIDR rule: %v", err)
	}
	if _, err := target.Create("/hello.txt", 0o644); err != nil {
		t.Fatalf("create: %v", err)
	}
	f, err := target.OpenFile("/hello.txt", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello over NFS")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = f.Close()
	dir, _ := e.ShareDir(sh.ID)
	if b, err := os.ReadFile(filepath.Join(dir, "hello.txt")); err != nil || string(b) != "hello over NFS" {
		t.Fatalf("share directory holds %q (%v)", b, err)
	}
	r, err := target.Open("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "hello over NFS" {
		t.Fatalf("read back %q %v", b, err)
	}
	_ = r.Close()

	// Revoking the rule takes effect on the client's next call.
	if err := shares.RevokeAccess(ctx, c, sh.ID, shares.RevokeAccessOpts{AccessID: rule}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, rule)
	if _, err := target.Create("/after-revoke.txt", 0o644); err == nil {
		t.Fatal("create after the rule was revoked succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "after-revoke.txt")); !os.IsNotExist(err) {
		t.Fatalf("after-revoke.txt: %v", err)
	}
}

func TestNFSExportOfAReadOnlyRuleRefusesWrites(t *testing.T) {
	e, c, sh, path := nfsShare(t)
	dir, _ := e.ShareDir(sh.ID)
	if err := os.WriteFile(filepath.Join(dir, "seed.txt"), []byte("seed"), 0o644); err != nil {
		t.Fatal(err)
	}
	grantIP(t, c, sh.ID, "127.0.0.1", "ro")
	target, err := nfsMount(t, e.Manila().NFSAddr(), path)
	if err != nil {
		t.Fatalf("mount with an ro rule: %v", err)
	}
	r, err := target.Open("/seed.txt")
	if err != nil {
		t.Fatalf("read on an ro export: %v", err)
	}
	if b, _ := io.ReadAll(r); string(b) != "seed" {
		t.Fatalf("read %q", b)
	}
	_ = r.Close()
	if _, err := target.Create("/new.txt", 0o644); err == nil {
		t.Fatal("create on an ro export succeeded")
	}
	if err := target.Remove("/seed.txt"); err == nil {
		t.Fatal("remove on an ro export succeeded")
	}
}

func TestNFSExportListenerClosesWithTheEmulator(t *testing.T) {
	e, err := emulator.Start(emulator.Options{Manila: manila.Options{NFSListen: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := e.Manila().NFSAddr()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("a client connection survived the emulator's Close")
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("the NFS listener still accepts after Close")
	}
	if (&manila.Service{}).NFSAddr() != "" {
		t.Error("a service without NFSListen reports an NFS address")
	}
}

// waitGone waits until access rule id is deleted.
func waitGone(t *testing.T, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	waitFor(t, func() (string, error) {
		r, err := shareaccessrules.Get(ctx, c, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return "gone", nil
		}
		if err != nil {
			return "", err
		}
		return r.State, nil
	}, func(s string) string { return s }, is("gone"))
}
