package manilavm

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// Steps records the time of each step for the closing table.
type Steps struct {
	T    *testing.T
	rows []string
	// ReportEnv names a variable holding a file to write the table to.
	ReportEnv string
}

// Do runs one step; a failed step ends the test after the table.
func (s *Steps) Do(name string, f func() error) {
	s.T.Helper()
	start := time.Now()
	err := f()
	status := "ok"
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	s.rows = append(s.rows, fmt.Sprintf("| %s | %.3f | %s |", name, time.Since(start).Seconds(), status))
	if err != nil {
		s.Report()
		s.T.Fatalf("%s: %v", name, err)
	}
}

// Report logs the table (and writes it to $ReportEnv when set).
func (s *Steps) Report() {
	table := "| step | s | result |\n|---|---|---|\n" + strings.Join(s.rows, "\n") + "\n"
	s.T.Log("\n" + table)
	if p := os.Getenv(s.ReportEnv); s.ReportEnv != "" && p != "" {
		_ = os.WriteFile(p, []byte(table), 0o644)
	}
}

// RWX is a multi-node read-write file-system capability.
var RWX = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
}

// TwoNodes is the ReadWriteMany check of one share on two nodes: each
// stages it (with its own volume context: NFS versions may differ) and
// publishes it; the first writes 16 MiB and a text, the second reads them
// back; the second's stats show the share's size; both unpublish and
// unstage, and no mount of fstype remains on either.
type TwoNodes struct {
	Volume   string
	Nodes    [2]*Node
	Contexts [2]map[string]string
	// Label names each node's stage step ("kernel NFS 4.1").
	Labels [2]string
	// SizeBytes is what NodeGetVolumeStats must report as the total.
	SizeBytes int64
	FSType    string
}

// Run runs the steps on s.
func (f TwoNodes) Run(ctx context.Context, s *Steps) {
	vol := f.Volume
	stage := func(i int) {
		n := f.Nodes[i]
		s.Do(n.Name+" NodeStageVolume ("+f.Labels[i]+")", func() error {
			_, err := n.CSI.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: n.StagingPath(vol),
				VolumeCapability: RWX, VolumeContext: f.Contexts[i]})
			return err
		})
		s.Do(n.Name+" NodePublishVolume", func() error {
			_, err := n.CSI.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: n.StagingPath(vol),
				TargetPath: n.TargetPath(vol), VolumeCapability: RWX})
			return err
		})
	}
	n1, n2 := f.Nodes[0], f.Nodes[1]
	stage(0)
	s.Do(n1.Name+" write 16 MiB + text", func() error {
		_, err := n1.G.Sh(ctx, "set -e; cd "+n1.TargetPath(vol)+"; echo hello-from-"+n1.Name+" > hello.txt; dd if=/dev/urandom of=data bs=1M count=16 2>/dev/null; md5sum data > data.md5; sync")
		return err
	})
	stage(1)
	s.Do(n2.Name+" read: same text and checksum", func() error {
		out, err := n2.G.Sh(ctx, "set -e; cd "+n2.TargetPath(vol)+"; cat hello.txt; md5sum -c data.md5")
		if err == nil && !strings.Contains(out, "hello-from-"+n1.Name) {
			err = fmt.Errorf("read %q", out)
		}
		return err
	})
	s.Do(n2.Name+" NodeGetVolumeStats (total = share size)", func() error {
		resp, err := n2.CSI.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: n2.TargetPath(vol)})
		if err != nil {
			return err
		}
		if total := resp.GetUsage()[0].GetTotal(); total != f.SizeBytes {
			return fmt.Errorf("total %d bytes, want %d", total, f.SizeBytes)
		}
		return nil
	})
	for _, n := range f.Nodes {
		s.Do(n.Name+" NodeUnpublishVolume", func() error {
			_, err := n.CSI.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: n.TargetPath(vol)})
			return err
		})
		s.Do(n.Name+" NodeUnstageVolume", func() error {
			_, err := n.CSI.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: n.StagingPath(vol)})
			return err
		})
		s.Do(n.Name+" no "+f.FSType+" mount left", func() error {
			left, err := n.Mounts(ctx, f.FSType)
			if err == nil && len(left) > 0 {
				err = fmt.Errorf("mounts left: %v", left)
			}
			return err
		})
	}
}
