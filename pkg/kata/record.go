// Package kata hands Cinder volumes to the Kata Containers runtime as
// direct-assigned volumes: instead of mounting the filesystem on the host,
// the node plugin writes a mountInfo.json record the runtime reads when it
// creates the container, and the guest mounts the block device itself.
//
// The on-disk contract is the one of kata-containers'
// src/runtime/pkg/direct-volume (Go runtime) and runtime-rs'
// direct_volume.rs; see docs/kata.md.
package kata

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

const (
	// DefaultRecordRoot is where both Kata runtimes look for records.
	DefaultRecordRoot = "/run/kata-containers/shared/direct-volumes"
	// MountInfoFile is the record's file name (capital I, as Kata spells it).
	MountInfoFile = "mountInfo.json"
	// VolumeTypeDirect is the only volume type runtime-rs accepts for a raw
	// block device; the Go runtime ignores the field.
	VolumeTypeDirect = "directvol"

	// MaxTargetPathLen is the longest target path whose padded base64 name
	// (4*ceil(n/3) bytes) still fits NAME_MAX (255).
	MaxTargetPathLen = 189

	// tempPrefix names in-progress records at the root. A leading dot is
	// outside the base64url alphabet, so neither Kata nor CAA's scanner can
	// mistake it for a volume.
	tempPrefix = ".tmp-"

	dirMode  = 0o700
	fileMode = 0o600
)

// Metadata keys. fsGroup and fsGroupChangePolicy are Kata's own (Go runtime
// only); ours are namespaced so Kata merely warns about them. Kata's
// createFilesystem and encryptionKey are never written: the first makes the
// agent run mkfs.ext4 -F on the device, the second would persist a secret.
const (
	MetaFSGroup             = "fsGroup"
	MetaFSGroupChangePolicy = "fsGroupChangePolicy"
	MetaVolumeID            = "cinder.csi.openstack.org/volume-id"
	MetaStagingPath         = "cinder.csi.openstack.org/staging-path"
	MetaStageFSType         = "cinder.csi.openstack.org/stage-fstype"
	// MetaStageOptions is a JSON list of the staging mount's options, so an
	// option holding a comma survives the round trip.
	MetaStageOptions = "cinder.csi.openstack.org/stage-options"
)

// MountInfo is Kata's record, field for field and tag for tag.
type MountInfo struct {
	VolumeType string            `json:"volume-type"`
	Device     string            `json:"device"`
	FsType     string            `json:"fstype"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Options    []string          `json:"options,omitempty"`
}

// Equal compares two records by content (nil and empty maps and lists are
// the same on disk because of omitempty).
func (m *MountInfo) Equal(o *MountInfo) bool {
	if m == nil || o == nil {
		return m == o
	}
	if m.VolumeType != o.VolumeType || m.Device != o.Device || m.FsType != o.FsType {
		return false
	}
	if len(m.Metadata) != len(o.Metadata) || len(m.Options) != len(o.Options) {
		return false
	}
	return (len(m.Metadata) == 0 || reflect.DeepEqual(m.Metadata, o.Metadata)) &&
		(len(m.Options) == 0 || reflect.DeepEqual(m.Options, o.Options))
}

// ErrPathTooLong means the target path cannot be encoded into a directory
// name. The caller answers InvalidArgument.
var ErrPathTooLong = errors.New("target path too long for a Kata direct-volume record")

// ErrRecordConflict means a different record already exists for the path.
var ErrRecordConflict = errors.New("a different Kata direct-volume record exists for this path")

// EncodePath returns the record directory name for a target path: URL-safe
// base64 with padding of the exact bytes, with no cleaning, because Kata
// encodes the OCI mount source it receives verbatim.
func EncodePath(targetPath string) (string, error) {
	if targetPath == "" {
		return "", errors.New("empty target path")
	}
	if len(targetPath) > MaxTargetPathLen {
		return "", fmt.Errorf("%w: %d bytes, at most %d fit", ErrPathTooLong, len(targetPath), MaxTargetPathLen)
	}
	return base64.URLEncoding.EncodeToString([]byte(targetPath)), nil
}

// DecodePath reverses EncodePath; it fails on names Kata would not produce.
func DecodePath(name string) (string, error) {
	b, err := base64.URLEncoding.DecodeString(name)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Store reads and writes records under one root.
type Store struct {
	root string
	// beforeRename is a test seam: it runs after the temp record is
	// complete and before it is renamed into place.
	beforeRename func() error
}

// NewStore returns a store for root (DefaultRecordRoot when empty).
func NewStore(root string) *Store {
	if root == "" {
		root = DefaultRecordRoot
	}
	return &Store{root: root}
}

// Root is the record root.
func (s *Store) Root() string { return s.root }

// Dir is the record directory of a target path.
func (s *Store) Dir(targetPath string) (string, error) {
	name, err := EncodePath(targetPath)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, name), nil
}

// Exists reports whether a record file exists for the target path.
func (s *Store) Exists(targetPath string) bool {
	dir, err := s.Dir(targetPath)
	if err != nil {
		return false
	}
	_, err = os.Lstat(filepath.Join(dir, MountInfoFile))
	return err == nil
}

// Read returns the record for a target path; an error wrapping
// fs.ErrNotExist when there is none.
func (s *Store) Read(targetPath string) (*MountInfo, error) {
	dir, err := s.Dir(targetPath)
	if err != nil {
		return nil, err
	}
	return readRecord(dir)
}

func readRecord(dir string) (*MountInfo, error) {
	data, err := os.ReadFile(filepath.Join(dir, MountInfoFile))
	if err != nil {
		return nil, err
	}
	var mi MountInfo
	if err := json.Unmarshal(data, &mi); err != nil {
		return nil, fmt.Errorf("corrupt record %s: %w", dir, err)
	}
	return &mi, nil
}

// Write stores the record for a target path atomically: the complete
// directory is built under a dot-prefixed temporary name at the root and
// renamed into place, so Kata either sees no directory or a complete one,
// and no temporary file ever sits inside a record directory (Kata takes any
// other name there for a sandbox id). An identical existing record is
// success; a different one is ErrRecordConflict.
func (s *Store) Write(targetPath string, mi *MountInfo) error {
	dir, err := s.Dir(targetPath)
	if err != nil {
		return err
	}
	if existing, err := readRecord(dir); err == nil {
		return compareExisting(existing, mi)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := json.Marshal(mi)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.root, dirMode); err != nil {
		return fmt.Errorf("creating record root: %w", err)
	}
	tmp, err := os.MkdirTemp(s.root, tempPrefix)
	if err != nil {
		return fmt.Errorf("creating temporary record: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, dirMode); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, MountInfoFile), data); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if s.beforeRename != nil {
		if err := s.beforeRename(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Someone else completed the record first (rename onto a
		// non-empty directory fails); compare instead of overwriting.
		if existing, rerr := readRecord(dir); rerr == nil {
			return compareExisting(existing, mi)
		}
		return fmt.Errorf("renaming record into place: %w", err)
	}
	renamed = true
	return syncDir(s.root)
}

func compareExisting(existing, want *MountInfo) error {
	if existing.Equal(want) {
		return nil
	}
	return fmt.Errorf("%w (device %s, fstype %s)", ErrRecordConflict, existing.Device, existing.FsType)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Remove deletes the record directory of a target path, sandbox-id files
// included. A missing record is success.
func (s *Store) Remove(targetPath string) error {
	dir, err := s.Dir(targetPath)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return nil
}

// SandboxIDs lists the sandbox ids the Go runtime recorded next to the
// record: every entry other than mountInfo.json, sorted.
func (s *Store) SandboxIDs(targetPath string) ([]string, error) {
	dir, err := s.Dir(targetPath)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.Name() != MountInfoFile {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Entry is one record found by List.
type Entry struct {
	TargetPath string
	Info       *MountInfo
}

// List returns every readable record under the root. Temporary and
// undecodable names are skipped, so are directories without a record.
func (s *Store) List() ([]Entry, error) {
	entries, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		target, err := DecodePath(name)
		if err != nil {
			continue
		}
		mi, err := readRecord(filepath.Join(s.root, name))
		if err != nil {
			continue
		}
		out = append(out, Entry{TargetPath: target, Info: mi})
	}
	return out, nil
}

// FindVolume returns the records that carry our volume-id metadata key for
// volumeID.
func (s *Store) FindVolume(volumeID string) ([]Entry, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range all {
		if e.Info.Metadata[MetaVolumeID] == volumeID {
			out = append(out, e)
		}
	}
	return out, nil
}

// CleanStaleTemps removes temporary records a crash left at the root. Call
// it at start, before any write can be in flight.
func (s *Store) CleanStaleTemps() (int, error) {
	entries, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// marshalOptions and unmarshalOptions carry a string list in a metadata
// value.
func marshalOptions(opts []string) string {
	if opts == nil {
		opts = []string{}
	}
	b, _ := json.Marshal(opts)
	return string(b)
}

func unmarshalOptions(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("bad %s metadata: %w", MetaStageOptions, err)
	}
	return out, nil
}
