package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"
	"k8s.io/mount-utils"
)

// configDriveLabels are the filesystem labels Nova gives the config drive:
// lower case on iso9660, upper case when it is written as vfat.
var configDriveLabels = []string{"config-2", "CONFIG-2"}

// configDriveDocument is the path of meta_data.json inside the drive.
const configDriveDocument = "openstack/latest/meta_data.json"

// configDrive reads meta_data.json from the config-2 drive. The drive is
// mounted read-only in a private temporary directory and unmounted at once,
// so nothing else on the host sees it and no mount is left behind.
type configDrive struct {
	devRoot string
	// dir, when set, is a config drive tree to read in place.
	dir string
	// fsTypes are tried in order: Nova writes iso9660 unless
	// config_drive_format=vfat.
	fsTypes []string
	mounter mount.Interface
	// findByBlkid looks the drive up by label when udev made no link.
	findByBlkid func(ctx context.Context) (string, error)
}

func newConfigDrive(devRoot, dir string) *configDrive {
	return &configDrive{
		devRoot:     devRoot,
		dir:         dir,
		fsTypes:     []string{"iso9660", "vfat"},
		mounter:     mount.New(""),
		findByBlkid: blkidConfigDrive,
	}
}

func (d *configDrive) name() string { return SourceConfigDrive }

func (d *configDrive) read(ctx context.Context) ([]byte, error) {
	if d.dir != "" {
		return readDocument(filepath.Join(d.dir, configDriveDocument))
	}
	device, err := d.device(ctx)
	if err != nil {
		return nil, err
	}
	mountDir, err := os.MkdirTemp("", "cinder-csi-config-drive-")
	if err != nil {
		return nil, fmt.Errorf("config drive: %w", err)
	}
	defer func() {
		if err := os.Remove(mountDir); err != nil {
			klog.ErrorS(err, "Could not remove the config drive mount directory", "dir", mountDir)
		}
	}()
	var mountErrs []error
	for _, fsType := range d.fsTypes {
		err := d.mounter.Mount(device, mountDir, fsType, []string{"ro"})
		if err != nil {
			mountErrs = append(mountErrs, err)
			continue
		}
		data, readErr := readDocument(filepath.Join(mountDir, configDriveDocument))
		if err := d.mounter.Unmount(mountDir); err != nil {
			// Leave the directory in place rather than removing the
			// contents of a still-mounted drive.
			return nil, fmt.Errorf("config drive: unmounting %s: %w", mountDir, err)
		}
		return data, readErr
	}
	return nil, fmt.Errorf("config drive %s: cannot mount as %s: %w", device, strings.Join(d.fsTypes, " or "), errors.Join(mountErrs...))
}

// device finds the config drive's block device.
func (d *configDrive) device(ctx context.Context) (string, error) {
	for _, label := range configDriveLabels {
		path := filepath.Join(d.devRoot, "disk", "by-label", label)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	if d.findByBlkid == nil {
		return "", errors.New("config drive: no device labelled config-2")
	}
	return d.findByBlkid(ctx)
}

// blkidConfigDrive asks blkid, which reads the labels itself, for hosts where
// udev made no by-label link.
func blkidConfigDrive(ctx context.Context) (string, error) {
	var errs []error
	for _, label := range configDriveLabels {
		out, err := exec.CommandContext(ctx, "blkid", "-l", "-t", "LABEL="+label, "-o", "device").Output()
		if dev := strings.TrimSpace(string(out)); err == nil && dev != "" {
			return dev, nil
		}
		errs = append(errs, fmt.Errorf("blkid LABEL=%s: %w", label, err))
	}
	return "", fmt.Errorf("config drive: no device labelled config-2: %w", errors.Join(errs...))
}

func readDocument(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config drive: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config drive: reading %s: %w", path, err)
	}
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("config drive: %s is larger than %d bytes", path, maxDocumentBytes)
	}
	return data, nil
}
