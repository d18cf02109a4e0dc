package cinder

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	utilexec "k8s.io/utils/exec"

	"github.com/cinder-csi/cinder-csi/pkg/fsopts"
)

// Filesystem helpers. mount-utils' ResizeFs always grows ext online
// (resize2fs on the mounted device), which needs CAP_SYS_RESOURCE and is
// slower than growing before the mount; these helpers grow ext offline when
// they can and skip the work when the filesystem already fills the device.

// partitionedFormat is what mount-utils reports for a disk with a
// partition table instead of a filesystem.
const partitionedFormat = "unknown data, probably partitions"

// extSize returns the size of an ext filesystem and its block size, read
// from the superblock (works mounted or not).
func extSize(exec utilexec.Interface, devicePath string) (size, blockSize int64, err error) {
	out, err := exec.Command("dumpe2fs", "-h", devicePath).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("dumpe2fs -h %s: %w: %s", devicePath, err, firstLines(out))
	}
	var count int64
	for line := range strings.SplitSeq(string(out), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, convErr := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		switch strings.TrimSpace(key) {
		case "Block count":
			count, err = n, convErr
		case "Block size":
			blockSize, err = n, convErr
		}
		if err != nil {
			return 0, 0, fmt.Errorf("dumpe2fs -h %s: bad %q line: %w", devicePath, line, err)
		}
	}
	if count == 0 || blockSize == 0 {
		return 0, 0, fmt.Errorf("dumpe2fs -h %s printed no block count or block size", devicePath)
	}
	return count * blockSize, blockSize, nil
}

// extNeedsGrowth reports whether an ext filesystem is at least one block
// smaller than its device.
func extNeedsGrowth(exec utilexec.Interface, devicePath string, deviceSize int64) (bool, error) {
	size, blockSize, err := extSize(exec, devicePath)
	if err != nil {
		return false, err
	}
	return deviceSize-size >= blockSize, nil
}

// growExtOffline checks and grows an unmounted ext filesystem. resize2fs
// insists on a fresh forced check first.
func growExtOffline(exec utilexec.Interface, devicePath string) error {
	out, err := exec.Command("e2fsck", "-f", "-p", devicePath).CombinedOutput()
	// e2fsck exit 1 means "errors corrected": safe to go on.
	if err != nil {
		if ee, ok := err.(utilexec.ExitError); !ok || ee.ExitStatus() != 1 {
			return fmt.Errorf("e2fsck -f -p %s before growing: %w: %s", devicePath, err, firstLines(out))
		}
	}
	return resize2fs(exec, devicePath)
}

func resize2fs(exec utilexec.Interface, devicePath string) error {
	out, err := exec.Command("resize2fs", devicePath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("resize2fs %s: %w: %s", devicePath, err, firstLines(out))
	}
	return nil
}

// formatDevice makes a filesystem on a device the caller probed and found
// blank, with the arguments mount-utils' FormatAndMount uses: forced (the
// probe already ruled out an existing filesystem), and no blocks reserved
// for root on ext.
func formatDevice(exec utilexec.Interface, fsType, devicePath string) error {
	args := []string{devicePath}
	switch {
	case fsopts.IsExt(fsType):
		args = []string{"-F", "-m0", devicePath}
	case fsType == "xfs":
		args = []string{"-f", devicePath}
	}
	out, err := exec.Command("mkfs."+fsType, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.%s %s: %w: %s", fsType, strings.Join(args, " "), err, firstLines(out))
	}
	return nil
}

// fsck exit codes (fsck(8)).
const (
	fsckErrorsCorrected   = 1
	fsckErrorsUncorrected = 4
)

// checkFilesystem runs fsck -a on a formatted device before a read-write
// mount, as mount-utils' FormatAndMount does: repairable damage is
// repaired, damage fsck cannot repair refuses the mount, and a missing or
// failing fsck is logged and the mount goes on.
func checkFilesystem(logger logr.Logger, exec utilexec.Interface, devicePath string) error {
	out, err := exec.Command("fsck", "-a", devicePath).CombinedOutput()
	if err == nil {
		return nil
	}
	var ee utilexec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitStatus() == fsckErrorsCorrected:
		logger.Info("fsck corrected errors on the device", "device", devicePath)
	case errors.As(err, &ee) && ee.ExitStatus() == fsckErrorsUncorrected:
		return errPrecondition("fsck -a %s found errors it could not correct; repair the filesystem by hand: %s", devicePath, firstLines(out))
	default:
		logger.Info("fsck failed; mounting without it", "device", devicePath, "err", err, "output", firstLines(out))
	}
	return nil
}

// growXFS grows a mounted XFS filesystem to its device. On a filesystem
// that already fills the device it is one geometry ioctl and exits 0.
func growXFS(exec utilexec.Interface, mountPath string) error {
	out, err := exec.Command("xfs_growfs", "-d", mountPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xfs_growfs -d %s: %w: %s", mountPath, err, firstLines(out))
	}
	return nil
}

// firstLines keeps tool output short enough for an error message.
func firstLines(out []byte) string {
	s := strings.TrimSpace(string(out))
	lines := strings.SplitN(s, "\n", 6)
	if len(lines) > 5 {
		lines = lines[:5]
		lines = append(lines, "...")
	}
	return strings.Join(lines, " | ")
}
