package manilanode

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode"
	"github.com/cinder-csi/cinder-csi/pkg/csi/manilanode/manilanodetest"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/tests/e2e/manilavm"
)

// node is one "node": a node server with its own kubelet root and state.
type node struct {
	name string
	root string
	ns   *manilanode.NodeServer
}

func newNode(t *testing.T, name, root string) *node {
	t.Helper()
	ns, err := manilanode.NewNodeServer(manilanode.NodeOptions{NodeName: name, NodeAddresses: []string{}, KubeletRootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	return &node{name: name, root: root, ns: ns}
}

func (n *node) staging(vol string) string {
	return filepath.Join(n.root, "plugins/kubernetes.io/csi", manilanode.DefaultDriverName, vol, "globalmount")
}

func (n *node) target(_ string) string {
	return filepath.Join(n.root, "pods/pod-"+n.name, "volumes/kubernetes.io~csi/pv/mount")
}

var rwx = manilavm.RWX

func (n *node) stage(ctx context.Context, vol string, vctx, secrets map[string]string) error {
	_, err := n.ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol), VolumeCapability: rwx, VolumeContext: vctx, Secrets: secrets})
	return err
}

func (n *node) publish(ctx context.Context, vol string) error {
	_, err := n.ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol), TargetPath: n.target(vol), VolumeCapability: rwx})
	return err
}

func (n *node) unpublish(ctx context.Context, vol string) error {
	_, err := n.ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: n.target(vol)})
	return err
}

func (n *node) unstage(ctx context.Context, vol string) error {
	_, err := n.ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol)})
	return err
}

// fuseDaemon returns the pid of the ceph-fuse process mounted at path.
func fuseDaemon(path string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && filepath.Base(args[0]) == "ceph-fuse" && args[1] == path {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no ceph-fuse process mounted at %s", path)
}

func TestCephFSFuseTwoNodesOnTheRealRig(t *testing.T) {
	env := requireManila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := newSteps(t)
	defer s.Report()
	c := cloud(ctx, t, env)
	clientID := "mnode-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	n1, n2 := newNode(t, "node-1", t.TempDir()), newNode(t, "node-2", t.TempDir())
	var share *openstack.Share
	var rule *openstack.AccessRule
	t.Cleanup(func() { cleanup(t, c, env, share, rule, clientID, n1, n2) })

	var export string
	s.Do("share 1 GiB CEPHFS + cephx rule (-> active with key) + export", func() (err error) {
		share, rule, export, err = cephShare(ctx, c, env, clientID)
		return err
	})
	vctx := map[string]string{manilanode.KeyShareID: share.ID, manilanode.KeyProtocol: manilanode.ProtocolCephFS,
		manilanode.KeyExportLocation: export, manilanode.KeyCephClientID: clientID, manilanode.KeyCephFSMounter: manilanode.MounterFuse}
	secrets := map[string]string{manilanode.KeyUserID: clientID, manilanode.KeyUserKey: rule.AccessKey}
	vol := share.ID

	s.Do("node-1 NodeStageVolume (ceph-fuse)", func() error { return n1.stage(ctx, vol, vctx, secrets) })
	s.Do("node-1 NodeStageVolume again (idempotent)", func() error { return n1.stage(ctx, vol, vctx, secrets) })
	s.Do("node-1 NodePublishVolume", func() error { return n1.publish(ctx, vol) })
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	s.Do("node-1 write 4 MiB + fsync", func() error { return writeSynced(filepath.Join(n1.target(vol), "data"), data) })
	s.Do("node-2 NodeStageVolume (ceph-fuse)", func() error { return n2.stage(ctx, vol, vctx, secrets) })
	s.Do("node-2 NodePublishVolume", func() error { return n2.publish(ctx, vol) })
	s.Do("node-2 read 4 MiB, same bytes", func() error { return sameContent(filepath.Join(n2.target(vol), "data"), data) })
	s.Do("node-2 NodeGetVolumeStats (size = share quota)", func() error {
		resp, err := n2.ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: n2.target(vol)})
		if err != nil {
			return err
		}
		if total := resp.GetUsage()[0].GetTotal(); total != 1<<30 {
			return fmt.Errorf("total %d bytes, want the 1 GiB quota", total)
		}
		return nil
	})
	s.Do("ceph-fuse runs in a session of its own", func() error {
		pid, err := fuseDaemon(n1.staging(vol))
		if err != nil {
			return err
		}
		sid, err := unix.Getsid(pid)
		if err != nil {
			return err
		}
		ours, err := unix.Getsid(0)
		if err != nil {
			return err
		}
		if sid == ours {
			return fmt.Errorf("ceph-fuse %d is in the plugin's session %d", pid, sid)
		}
		return nil
	})
	s.Do("node-1 plugin restart: new server, stage+publish idempotent, data there", func() error {
		n1 = newNode(t, "node-1", n1.root)
		if err := n1.stage(ctx, vol, vctx, secrets); err != nil {
			return err
		}
		if err := n1.publish(ctx, vol); err != nil {
			return err
		}
		return sameContent(filepath.Join(n1.target(vol), "data"), data)
	})
	s.Do("node-2 ceph-fuse killed: stat is ENOTCONN, health INACCESSIBLE", func() error {
		pid, err := fuseDaemon(n2.staging(vol))
		if err != nil {
			return err
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			return err
		}
		for range 100 {
			if _, err := os.Stat(n2.staging(vol)); errors.Is(err, unix.ENOTCONN) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := os.Stat(n2.staging(vol)); !errors.Is(err, unix.ENOTCONN) {
			return fmt.Errorf("stat after the kill: %v, want ENOTCONN", err)
		}
		h, err := n2.ns.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: vol, StagingTargetPath: n2.staging(vol)})
		if err != nil {
			return err
		}
		if len(h.GetVolumeHealth().GetHealthStatuses()) == 0 {
			return fmt.Errorf("health reports nothing for a dead ceph-fuse")
		}
		return nil
	})
	s.Do("node-2 NodeStageVolume remounts the broken share", func() error { return n2.stage(ctx, vol, vctx, secrets) })
	s.Do("node-2 NodePublishVolume rebinds the broken target, data there", func() error {
		if err := n2.publish(ctx, vol); err != nil {
			return err
		}
		return sameContent(filepath.Join(n2.target(vol), "data"), data)
	})
	for _, n := range []*node{n1, n2} {
		s.Do(n.name+" NodeUnpublishVolume", func() error { return n.unpublish(ctx, vol) })
		s.Do(n.name+" NodeUnstageVolume", func() error { return n.unstage(ctx, vol) })
		s.Do(n.name+" nothing left (mounts, key file, ceph-fuse)", func() error { return nothingLeft(t, n, vol) })
	}
	removeSteps(ctx, s, c, "cephx", &share, &rule)
	s.Do("cephx user gone from Ceph", func() error {
		if cephxUserExists(env, clientID) {
			return fmt.Errorf("client.%s is still in Ceph", clientID)
		}
		return nil
	})
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sameContent(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: %d bytes differ from the %d written", path, len(got), len(want))
	}
	return nil
}

func nothingLeft(t *testing.T, n *node, vol string) error {
	if m := manilanodetest.MountsUnder(t, n.root); len(m) > 0 {
		return fmt.Errorf("mounts left: %v", m)
	}
	keys, _ := filepath.Glob(filepath.Join(n.root, "plugins", manilanode.DefaultDriverName, "state/keys/*"))
	if len(keys) > 0 {
		return fmt.Errorf("key files left: %v", keys)
	}
	// ceph-fuse exits by itself once unmounted, a moment later.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pid, err := fuseDaemon(n.staging(vol))
		if err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ceph-fuse %d still running 10 s after the unmount", pid)
		}
	}
}

// cleanup removes whatever a failed run left: mounts, daemons, the rule
// and the share.
func cleanup(t *testing.T, c openstack.ShareCloud, env manilaEnv, share *openstack.Share, rule *openstack.AccessRule, clientID string, nodes ...*node) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, n := range nodes {
		left := manilanodetest.MountsUnder(t, n.root)
		for i := len(left) - 1; i >= 0; i-- {
			t.Logf("cleanup: unmounting %s", left[i])
			_ = unix.Unmount(left[i], unix.MNT_DETACH)
		}
	}
	if share == nil {
		return
	}
	if !removeShare(ctx, t, c, share, rule) {
		return
	}
	if cephxUserExists(env, clientID) {
		t.Errorf("cleanup: client.%s left in Ceph", clientID)
	}
}
