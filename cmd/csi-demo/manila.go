package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The Manila part of the demo (--driver manila): one NFS share through its
// life over CSI gRPC against bin/manila-csi-plugin and the emulator's
// Manila. The node steps (mount -t nfs4) need a kernel NFS client and a
// server the emulator does not run, so they are skipped with that reason;
// the node service's own tests bind-mount the emulator's share directory
// instead (pkg/csi/manilanode, tests/sanity/manilanfs).

const (
	manilaSteps     = 9
	manilaShareType = "cephfsnfstype"
	// manilaNode is the node id the node service reports: its name and the
	// address the controller grants NFS access to.
	manilaNode = "demo-node/127.0.0.1"
)

var shareCap = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
}

type manilaState struct {
	shareID, snapID, restoredID, cloneID string
	published                            bool
}

func (d *demo) startManila(ctx context.Context) error {
	for _, b := range []string{"openstack-emulator", "manila-csi-plugin"} {
		if _, err := os.Stat(filepath.Join(d.opts.binDir, b)); err != nil {
			return fmt.Errorf("%s not found in %s (run `make build`, or pass --bin-dir): %w", b, d.opts.binDir, err)
		}
	}
	work, err := os.MkdirTemp("", "csi-demo-manila-")
	if err != nil {
		return err
	}
	d.work, d.logs, d.total, d.pluginName = work, &logs{}, manilaSteps, "manila-csi-plugin"
	d.emu = exec.Command(filepath.Join(d.opts.binDir, "openstack-emulator"), "--profile", d.opts.profile,
		"--url-file", filepath.Join(work, "url"), "--cloud-conf", filepath.Join(work, "cloud.conf"), "--data-dir", filepath.Join(work, "data"))
	d.emu.Stdout, d.emu.Stderr = &d.logs.emulator, &d.logs.emulator
	if d.emuDone, err = startProcess(d.emu); err != nil {
		return fmt.Errorf("starting openstack-emulator: %w", err)
	}
	urlBytes, err := waitFor(ctx, d.emuDone, "openstack-emulator", func() ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(work, "url"))
		return b, err == nil && len(b) > 0
	})
	if err != nil {
		return err
	}
	d.emuURL = strings.TrimSpace(string(urlBytes))
	socket := filepath.Join(work, "csi.sock")
	// No Kubernetes here: the cephx key would travel in the publish
	// context, and no CSINode is checked.
	d.plugin = exec.Command(filepath.Join(d.opts.binDir, "manila-csi-plugin"), "--endpoint", "unix://"+socket,
		"--cloud-config", filepath.Join(work, "cloud.conf"), "--cluster-id", "demo", "--share-protocol-selector", "NFS",
		"--cephx-key-delivery", "publish-context", "--check-csinodes=false", "--provide-node-service=false")
	d.plugin.Stdout, d.plugin.Stderr = &d.logs.plugin, &d.logs.plugin
	if d.plugDone, err = startProcess(d.plugin); err != nil {
		return fmt.Errorf("starting manila-csi-plugin: %w", err)
	}
	if _, err := waitFor(ctx, d.plugDone, "manila-csi-plugin", func() ([]byte, bool) {
		st, err := os.Stat(socket)
		return nil, err == nil && st.Mode()&os.ModeSocket != 0
	}); err != nil {
		return err
	}
	if d.conn, err = grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return err
	}
	d.ids, d.cs = csi.NewIdentityClient(d.conn), csi.NewControllerClient(d.conn)
	info, err := d.ids.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return fmt.Errorf("GetPluginInfo: %w", err)
	}
	fmt.Fprintf(d.out, "csi-demo: %s %s on unix://%s\n", info.GetName(), info.GetVendorVersion(), socket)
	fmt.Fprintf(d.out, "          OpenStack emulator (Manila) at %s, %q latency profile\n", d.emuURL, d.opts.profile)
	fmt.Fprintf(d.out, "          node steps skipped: mounting NFS needs a kernel NFS client and an NFS server, which this host and the emulator lack\n\n")
	return nil
}

func (d *demo) manilaLifecycle(ctx context.Context) error {
	st := &d.manila
	steps := []struct {
		title, skip string
		run         func(ctx context.Context) (string, error)
	}{
		{"Create a 1 GiB NFS share (CreateVolume)", "", func(ctx context.Context) (string, error) {
			resp, err := d.cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-manila-demo", CapacityRange: &csi.CapacityRange{RequiredBytes: gib},
				VolumeCapabilities: []*csi.VolumeCapability{shareCap}, Parameters: map[string]string{"type": manilaShareType, "protocol": "NFS"}})
			if err != nil {
				return "", err
			}
			st.shareID = resp.GetVolume().GetVolumeId()
			return fmt.Sprintf("share %s, export %s, no access rule yet", st.shareID, resp.GetVolume().GetVolumeContext()["exportLocation"]), nil
		}},
		{"Publish it to a node (ControllerPublishVolume: ip rule, active)", "", func(ctx context.Context) (string, error) {
			resp, err := d.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: st.shareID, NodeId: manilaNode, VolumeCapability: shareCap})
			if err != nil {
				return "", err
			}
			st.published = true
			return fmt.Sprintf("rule ip 127.0.0.1 rw active for node %s; publish context %s", manilaNode, fmtMap(resp.GetPublishContext())), nil
		}},
		{"Stage and publish it on the node (NodeStage + NodePublish)", "no kernel NFS client or NFS server here; node tests bind-mount the emulator's share directory", nil},
		{"Snapshot it (CreateSnapshot until ready_to_use)", "", func(ctx context.Context) (string, error) { return d.manilaSnapshot(ctx) }},
		{"Expand it to 2 GiB (ControllerExpandVolume, online)", "", func(ctx context.Context) (string, error) {
			resp, err := d.cs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: st.shareID, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("share %s is %d GiB, node expansion required: %v", st.shareID, resp.GetCapacityBytes()/gib, resp.GetNodeExpansionRequired()), nil
		}},
		{"Restore the snapshot into a new share (CreateVolume from snapshot)", "", func(ctx context.Context) (string, error) {
			id, err := d.createFrom(ctx, "pvc-manila-demo-restore", &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: st.snapID}}})
			st.restoredID = id
			return "share " + id + " from snapshot " + st.snapID, err
		}},
		{"Clone it (CreateVolume from volume; intermediate snapshot dropped)", "", func(ctx context.Context) (string, error) {
			id, err := d.createFrom(ctx, "pvc-manila-demo-clone", &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: st.shareID}}})
			st.cloneID = id
			return "share " + id + " cloned from " + st.shareID + "; the intermediate snapshot is gone", err
		}},
		{"Unpublish it (ControllerUnpublishVolume: the node's rule revoked)", "", func(ctx context.Context) (string, error) {
			if _, err := d.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: st.shareID, NodeId: manilaNode}); err != nil {
				return "", err
			}
			st.published = false
			return "the node's rule is gone; nothing can mount the share", nil
		}},
	}
	fmt.Fprintf(d.out, "node %s (the id the node service reports: name and the address NFS access is granted to)\n\n", manilaNode)
	for _, s := range steps {
		if s.run == nil {
			d.skipStep(s.title, s.skip)
			continue
		}
		if err := d.runStep(ctx, s.title, s.run); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) manilaSnapshot(ctx context.Context) (string, error) {
	st := &d.manila
	for {
		resp, err := d.cs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-manila-demo", SourceVolumeId: st.shareID})
		if err != nil {
			return "", err
		}
		st.snapID = resp.GetSnapshot().GetSnapshotId()
		if resp.GetSnapshot().GetReadyToUse() {
			return fmt.Sprintf("snapshot %s of share %s, ready", st.snapID, st.shareID), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond): // the snapshotter's repeat
		}
	}
}

func (d *demo) createFrom(ctx context.Context, name string, src *csi.VolumeContentSource) (string, error) {
	resp, err := d.cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: gib},
		VolumeCapabilities: []*csi.VolumeCapability{shareCap}, Parameters: map[string]string{"type": manilaShareType, "protocol": "NFS"}, VolumeContentSource: src})
	if err != nil {
		return "", err
	}
	return resp.GetVolume().GetVolumeId(), nil
}

// manilaCleanup undoes what the steps made, whichever failed, then checks
// through the driver that Manila holds no share and no snapshot.
func (d *demo) manilaCleanup(ctx context.Context) error {
	st := &d.manila
	if d.cs == nil {
		return nil
	}
	var errs []error
	if st.published {
		if _, err := d.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: st.shareID, NodeId: manilaNode}); err != nil {
			errs = append(errs, err)
		}
	}
	err := d.runStep(ctx, "Clean up (DeleteSnapshot, DeleteVolume x3, nothing left)", func(ctx context.Context) (string, error) {
		if st.snapID != "" {
			if _, err := d.cs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: st.snapID}); err != nil {
				return "", err
			}
		}
		for _, id := range []string{st.restoredID, st.cloneID, st.shareID} {
			if id != "" {
				if err := d.deleteVolume(ctx, id); err != nil {
					return "", err
				}
			}
		}
		vols, err := d.cs.ListVolumes(ctx, &csi.ListVolumesRequest{})
		if err != nil {
			return "", err
		}
		snaps, err := d.cs.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
		if err != nil {
			return "", err
		}
		if n, m := len(vols.GetEntries()), len(snaps.GetEntries()); n+m > 0 {
			return "", fmt.Errorf("the cloud still holds %d Manila shares and %d snapshots", n, m)
		}
		return "Manila holds no share and no snapshot", nil
	})
	return errors.Join(append(errs, err)...)
}
