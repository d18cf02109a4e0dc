package cinder

import (
	"context"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/cinder-csi/cinder-csi/pkg/device"
	"github.com/cinder-csi/cinder-csi/pkg/metrics"
)

// Node metrics. Mounts and mkfs runs are timed by wrapping the mounter and
// its exec, so every mount(8) and mkfs the node runs is recorded, whichever
// code path runs it. Bind mounts use mount(2) and record themselves
// (bindMount).

// staleMount counts and logs a mount that is corrupted or whose disk is
// gone. A stale mount that stays is counted again by each call that finds
// it, kubelet's periodic stats and health calls included.
func (ns *NodeServer) staleMount(logger logr.Logger, path, why string) {
	ns.opts.Metrics.StaleMount()
	logger.Info("Stale mount", "path", path, "reason", why)
}

// discoveryMethod names a device.Device.FoundBy for the metrics label.
func discoveryMethod(foundBy string) string {
	switch foundBy {
	case device.FoundByID:
		return metrics.DiscoveryByID
	case device.FoundBySysfs:
		return metrics.DiscoverySysfs
	case device.FoundByMetadata:
		return metrics.DiscoveryMetadata
	case device.FoundByHint:
		return metrics.DiscoveryHint
	}
	return foundBy
}

// instrumentMounter returns a copy of sm whose mounts and mkfs runs are
// recorded in m; sm itself when m is nil.
func instrumentMounter(sm *mount.SafeFormatAndMount, m *metrics.Metrics) *mount.SafeFormatAndMount {
	if m == nil {
		return sm
	}
	c := *sm
	c.Interface = &timedMounter{Interface: sm.Interface, m: m}
	c.Exec = &timedExec{Interface: sm.Exec, m: m}
	return &c
}

// timedMounter records each mount. Each method calls the same method of
// the wrapped mounter, so a mount is recorded once however the mounter
// delegates internally.
type timedMounter struct {
	mount.Interface
	m *metrics.Metrics
}

func (t *timedMounter) observe(start time.Time, err error) error {
	t.m.ObserveMount(time.Since(start), err)
	return err
}

func (t *timedMounter) Mount(source, target, fstype string, options []string) error {
	start := time.Now()
	return t.observe(start, t.Interface.Mount(source, target, fstype, options))
}

func (t *timedMounter) MountSensitive(source, target, fstype string, options, sensitive []string) error {
	start := time.Now()
	return t.observe(start, t.Interface.MountSensitive(source, target, fstype, options, sensitive))
}

func (t *timedMounter) MountSensitiveWithoutSystemd(source, target, fstype string, options, sensitive []string) error {
	start := time.Now()
	return t.observe(start, t.Interface.MountSensitiveWithoutSystemd(source, target, fstype, options, sensitive))
}

func (t *timedMounter) MountSensitiveWithoutSystemdWithMountFlags(source, target, fstype string, options, sensitive, flags []string) error {
	start := time.Now()
	return t.observe(start, t.Interface.MountSensitiveWithoutSystemdWithMountFlags(source, target, fstype, options, sensitive, flags))
}

// timedExec records the mkfs runs (mount-utils runs "mkfs.<fstype>");
// other commands pass through untouched.
type timedExec struct {
	utilexec.Interface
	m *metrics.Metrics
}

func (t *timedExec) Command(cmd string, args ...string) utilexec.Cmd {
	return t.wrap(cmd, t.Interface.Command(cmd, args...))
}

func (t *timedExec) CommandContext(ctx context.Context, cmd string, args ...string) utilexec.Cmd {
	return t.wrap(cmd, t.Interface.CommandContext(ctx, cmd, args...))
}

func (t *timedExec) wrap(cmd string, c utilexec.Cmd) utilexec.Cmd {
	fstype, ok := strings.CutPrefix(cmd, "mkfs.")
	if !ok {
		return c
	}
	return &timedFormat{Cmd: c, fstype: fstype, m: t.m}
}

type timedFormat struct {
	utilexec.Cmd
	fstype string
	m      *metrics.Metrics
}

func (f *timedFormat) Run() error {
	start := time.Now()
	err := f.Cmd.Run()
	f.m.ObserveFormat(f.fstype, time.Since(start), err)
	return err
}

func (f *timedFormat) CombinedOutput() ([]byte, error) {
	start := time.Now()
	out, err := f.Cmd.CombinedOutput()
	f.m.ObserveFormat(f.fstype, time.Since(start), err)
	return out, err
}

func (f *timedFormat) Output() ([]byte, error) {
	start := time.Now()
	out, err := f.Cmd.Output()
	f.m.ObserveFormat(f.fstype, time.Since(start), err)
	return out, err
}
