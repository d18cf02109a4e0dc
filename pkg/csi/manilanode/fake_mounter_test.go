package manilanode

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"k8s.io/mount-utils"
)

// fakeMounter keeps a mount table in memory: each share mount is a new
// filesystem (its own minor number), a bind shows its source's. It lets
// the trust-boundary logic run without root; the host tests repeat the
// important cases with real mounts.
type fakeMounter struct {
	mu     sync.Mutex
	table  []mount.MountInfo
	next   int
	calls  []string
	keys   []string // key file contents seen by MountShare
	fail   error    // returned by the next MountShare
	shares map[string]int
}

func (f *fakeMounter) MountShare(_ context.Context, spec *ShareSpec, keyFile, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "share "+spec.Export.String()+" "+target)
	if keyFile != "" {
		f.keys = append(f.keys, keyFile)
	}
	if err := f.fail; err != nil {
		f.fail = nil
		return err
	}
	if f.shares == nil {
		f.shares = map[string]int{}
	}
	minor, ok := f.shares[spec.Export.String()]
	if !ok {
		f.next++
		minor = 100 + f.next
		f.shares[spec.Export.String()] = minor
	}
	fstype := "nfs4"
	if spec.Protocol == ProtocolCephFS {
		fstype = "fuse.ceph-fuse"
	}
	f.table = append(f.table, mount.MountInfo{Major: 0, Minor: minor, Root: "/", MountPoint: target, FsType: fstype, Source: spec.Export.String(), MountOptions: []string{"rw"}})
	return nil
}

func (f *fakeMounter) BindMount(source, target string, readOnly bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("bind %s %s ro=%v", source, target, readOnly))
	src, ok := mountTable(f.table).top(source)
	if !ok {
		return fmt.Errorf("fake: %s is not a mount", source)
	}
	src.MountPoint = target
	src.MountOptions = []string{"rw"}
	if readOnly {
		src.MountOptions = []string{"ro"}
	}
	f.table = append(f.table, src)
	return nil
}

func (f *fakeMounter) Unmount(target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unmount "+target)
	for i := len(f.table) - 1; i >= 0; i-- {
		if f.table[i].MountPoint == target {
			f.table = slices.Delete(f.table, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("fake: %s is not mounted", target)
}

func (f *fakeMounter) MountInfo() ([]mount.MountInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.table), nil
}

// mountsAt counts the mounts at path.
func (f *fakeMounter) mountsAt(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.table {
		if m.MountPoint == path {
			n++
		}
	}
	return n
}

// foreign adds a mount the driver did not make.
func (f *fakeMounter) foreign(path, source string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = append(f.table, mount.MountInfo{Major: 8, Minor: 1, Root: "/", MountPoint: path, FsType: "ext4", Source: source})
}
