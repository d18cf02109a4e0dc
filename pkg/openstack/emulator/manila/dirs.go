package manila

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Each share is a directory, DataDir/manila/shares/<share-id>, made with
// the share and removed with it; a snapshot copies its share's directory
// when it is taken (DataDir/manila/snapshots/<snapshot-id>), and a share
// from a snapshot starts as a copy of it. Node tests bind-mount
// ShareDir(id) where a real node would mount the export. The share's size
// is not enforced on the directory (a plain directory has no quota); the
// shrink check reads how much the directory holds.

// ShareDir returns the directory that holds share id's data, and whether
// the share exists.
func (s *Service) ShareDir(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Shares[id]; !ok {
		return "", false
	}
	return filepath.Join(s.sharesRoot(), id), true
}

// ShareDirByExport returns the directory behind an export location path
// (NFS "host:/volumes/..." or CephFS "mons:/volumes/..."), and whether a
// share has that export.
func (s *Service) ShareDirByExport(path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sh := range s.st.Shares {
		for _, el := range sh.Exports {
			if el.Path == path {
				return filepath.Join(s.sharesRoot(), id), true
			}
		}
	}
	return "", false
}

// SnapshotDir returns the directory of a snapshot's data.
func (s *Service) SnapshotDir(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.Snapshots[id]; !ok {
		return "", false
	}
	return filepath.Join(s.snapshotsRoot(), id), true
}

func (s *Service) makeShareDir(id string) error {
	return os.MkdirAll(filepath.Join(s.sharesRoot(), id), 0o777)
}

// copyTree copies the regular files, directories and symlinks of src into
// dst (created). A missing src copies nothing.
func copyTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o777); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == src {
				return filepath.SkipDir
			}
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // devices, sockets, fifos: not share data
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// usedBytes sums the sizes of the regular files under dir.
func usedBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// removeTree removes a share's or snapshot's directory; it refuses paths
// outside root, so a corrupt state file cannot remove anything else.
func removeTree(root, id string) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == ".." {
		return
	}
	_ = os.RemoveAll(filepath.Join(root, id))
}
