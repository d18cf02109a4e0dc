package manila

import (
	"os"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	billy "github.com/go-git/go-billy/v5"
)

// guardedFS is one client's view of a share's directory: every operation
// first asks check whether the client's access rule still allows it (a
// write needs "rw"), so revoking the rule or deleting the share takes
// effect on the next call, as with Ganesha's export removal. Change
// (chmod, chown, utimes) makes SETATTR work.
type guardedFS struct {
	billy.Filesystem
	check   func(write bool) error
	shareID string
}

var (
	_ billy.Filesystem = (*guardedFS)(nil)
	_ billy.Change     = (*guardedFS)(nil)
)

// writeFlags are the open flags that change the file system.
const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_TRUNC | os.O_APPEND

func (g *guardedFS) Create(name string) (billy.File, error) {
	if err := g.check(true); err != nil {
		return nil, err
	}
	return g.Filesystem.Create(name)
}

func (g *guardedFS) Open(name string) (billy.File, error) {
	if err := g.check(false); err != nil {
		return nil, err
	}
	return g.Filesystem.Open(name)
}

func (g *guardedFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if err := g.check(flag&writeFlags != 0); err != nil {
		return nil, err
	}
	return g.Filesystem.OpenFile(name, flag, perm)
}

func (g *guardedFS) Stat(name string) (os.FileInfo, error) {
	if err := g.check(false); err != nil {
		return nil, err
	}
	return g.Filesystem.Stat(name)
}

func (g *guardedFS) Lstat(name string) (os.FileInfo, error) {
	if err := g.check(false); err != nil {
		return nil, err
	}
	return g.Filesystem.Lstat(name)
}

func (g *guardedFS) ReadDir(path string) ([]os.FileInfo, error) {
	if err := g.check(false); err != nil {
		return nil, err
	}
	return g.Filesystem.ReadDir(path)
}

func (g *guardedFS) Readlink(link string) (string, error) {
	if err := g.check(false); err != nil {
		return "", err
	}
	return g.Filesystem.Readlink(link)
}

func (g *guardedFS) Rename(from, to string) error {
	return g.write(func() error { return g.Filesystem.Rename(from, to) })
}

func (g *guardedFS) Remove(name string) error {
	return g.write(func() error { return g.Filesystem.Remove(name) })
}

func (g *guardedFS) MkdirAll(name string, perm os.FileMode) error {
	return g.write(func() error { return g.Filesystem.MkdirAll(name, perm) })
}

func (g *guardedFS) Symlink(target, link string) error {
	return g.write(func() error { return g.Filesystem.Symlink(target, link) })
}

func (g *guardedFS) TempFile(dir, prefix string) (billy.File, error) {
	if err := g.check(true); err != nil {
		return nil, err
	}
	return g.Filesystem.TempFile(dir, prefix)
}

// Chroot is refused: go-nfs never asks for it, and a client's view stays
// the share's root.
func (g *guardedFS) Chroot(string) (billy.Filesystem, error) { return nil, os.ErrPermission }

func (g *guardedFS) Chmod(name string, mode os.FileMode) error {
	return g.inside(name, func(p string) error { return os.Chmod(p, mode) })
}

func (g *guardedFS) Lchown(name string, uid, gid int) error {
	return g.inside(name, func(p string) error { return os.Lchown(p, uid, gid) })
}

func (g *guardedFS) Chown(name string, uid, gid int) error {
	return g.inside(name, func(p string) error { return os.Chown(p, uid, gid) })
}

func (g *guardedFS) Chtimes(name string, atime, mtime time.Time) error {
	return g.inside(name, func(p string) error { return os.Chtimes(p, atime, mtime) })
}

// inside runs op on name's host path, resolved within the share's root
// (securejoin, as BoundOS does): a symlink the client made cannot lead a
// chmod or chown out of the share.
func (g *guardedFS) inside(name string, op func(path string) error) error {
	return g.write(func() error {
		p, err := securejoin.SecureJoin(g.Root(), name)
		if err != nil {
			return err
		}
		return op(p)
	})
}

func (g *guardedFS) write(op func() error) error {
	if err := g.check(true); err != nil {
		return err
	}
	return op()
}
