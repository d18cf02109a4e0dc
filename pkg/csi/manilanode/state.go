package manilanode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/mount-utils"
)

// The node keeps, per staged volume, a record of what it mounted where and
// the cephx key file, in its state directory (a hostPath that outlives the
// plugin container). The record is what makes a mount "this volume's":
// it is written before the mount (so a crash between the two leaves a
// record, and the retry adopts the mount) and completed with the mount's
// identity after it, which publish, unpublish, unstage and stats compare
// with the mount table. A static PV or a restart needs no volume context
// to find it again.

// stageRecord is one staged volume.
type stageRecord struct {
	VolumeID    string    `json:"volumeID"`
	StagingPath string    `json:"stagingPath"`
	Spec        ShareSpec `json:"spec"`
	// Mount is the staging mount's identity, set once it exists.
	Mount *mountID `json:"mount,omitempty"`
	// Former are the stage mounts this volume had before a broken one was
	// mounted again (a new ceph-fuse is a new filesystem): pods' binds of
	// the broken one are still this volume's to replace or unmount.
	Former []*mountID `json:"former,omitempty"`
}

// maxFormerMounts bounds Former; each remount adds one.
const maxFormerMounts = 8

// owns reports whether m shows this volume's stage mount, current or
// former.
func (r *stageRecord) owns(m mount.MountInfo) bool {
	if r == nil {
		return false
	}
	if r.Mount.sameFilesystem(m) {
		return true
	}
	for _, f := range r.Former {
		if f.sameFilesystem(m) {
			return true
		}
	}
	return false
}

// formerWith returns the former mounts plus id, newest last, bounded.
func (r *stageRecord) formerWith(id *mountID) []*mountID {
	var out []*mountID
	if r != nil {
		out = append(out, r.Former...)
	}
	if id != nil {
		out = append(out, id)
	}
	if len(out) > maxFormerMounts {
		out = out[len(out)-maxFormerMounts:]
	}
	return out
}

// mountID identifies a mounted filesystem: a bind of it shows the same
// device and root, another share does not (each NFS export, ceph-fuse
// connection and CephFS kernel mount has its own device or root).
type mountID struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Root   string `json:"root"`
	FsType string `json:"fsType"`
	Source string `json:"source"`
}

func idOf(m mount.MountInfo) *mountID {
	return &mountID{Major: m.Major, Minor: m.Minor, Root: m.Root, FsType: m.FsType, Source: m.Source}
}

// sameFilesystem reports whether m shows the filesystem id names (the
// staging mount itself or a bind of it).
func (id *mountID) sameFilesystem(m mount.MountInfo) bool {
	return id != nil && id.Major == m.Major && id.Minor == m.Minor && id.Root == m.Root
}

// store is the state directory.
type store struct{ dir string }

func (s store) recordPath(volumeID string) string {
	return filepath.Join(s.dir, "volumes", volumeID+".json")
}

// KeyFile is where the cephx key of a volume is kept while it is staged.
func (s store) keyFile(volumeID string) string {
	return filepath.Join(s.dir, "keys", volumeID+".key")
}

// cephDir holds ceph-fuse's logs and admin sockets.
func (s store) cephDir() string { return filepath.Join(s.dir, "ceph") }

func (s store) init() error {
	for _, d := range []string{"volumes", "keys", "ceph"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return fmt.Errorf("creating the node state directory: %w", err)
		}
	}
	// MkdirAll keeps the mode of a directory that exists.
	return os.Chmod(filepath.Join(s.dir, "keys"), 0o700)
}

// load returns the record of volumeID, nil when there is none.
func (s store) load(volumeID string) (*stageRecord, error) {
	data, err := os.ReadFile(s.recordPath(volumeID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stage record of volume %s: %w", volumeID, err)
	}
	var r stageRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("stage record %s is damaged: %w", s.recordPath(volumeID), err)
	}
	return &r, nil
}

func (s store) save(r *stageRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.recordPath(r.VolumeID), data)
}

// writeKey writes the cephx key to the volume's 0600 key file.
func (s store) writeKey(volumeID, key string) (string, error) {
	p := s.keyFile(volumeID)
	if err := writeFileAtomic(p, []byte(key)); err != nil {
		// The error names the file, never the key.
		return "", fmt.Errorf("writing the cephx key file %s: %w", p, errors.Unwrap(err))
	}
	return p, nil
}

// forget removes the record and key file of a volume.
func (s store) forget(volumeID string) error {
	for _, p := range []string{s.keyFile(volumeID), s.recordPath(volumeID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	for _, suffix := range []string{".log", ".asok"} {
		_ = os.Remove(filepath.Join(s.cephDir(), volumeID+suffix))
	}
	return nil
}

// writeFileAtomic writes a 0600 file by rename, so a crash leaves the old
// content or the new, never half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a file in %s: %w", filepath.Dir(path), err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming to %s: %w", path, err)
	}
	return nil
}
