package hostpath

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"
)

func TestMountFlagAllowList(t *testing.T) {
	l := NewMountFlagAllowList("discard", "commit=", "data=")
	cases := []struct {
		flag string
		ok   bool
	}{
		{"ro", true},
		{"noatime", true},
		{"discard", true},
		{"commit=30", true},
		{"data=ordered", true},
		{`context="system_u:object_r:container_file_t:s0:c1,c2"`, true},
		{"remount", false},
		{"bind", false},
		{"rbind", false},
		{"move", false},
		{"shared", false},
		{"rshared", false},
		{"private", false},
		{"rslave", false},
		{"unbindable", false},
		{"--make-shared", false},
		{"-o", false},
		{"loop", false},
		{"offset=512", false},
		{"X-mount.mkdir", false},
		{"x-systemd.automount", false},
		{"user", false},
		{"ro,remount", false},
		{"commit=30,remount", false},
		{"commit=", false},
		{`context="a"b"`, false},
		{`context="unterminated`, false},
		{"no atime", false},
		{"noatime\n", false},
		{"", false},
		{"nouuid", false}, // not on this list
		{"discard=1", false},
		{"ro=1", false},
	}
	for _, c := range cases {
		err := l.Check("volume_capability.mount.mount_flags", []string{"noatime", c.flag})
		if c.ok != (err == nil) {
			t.Errorf("Check(%q) = %v, want ok=%t", c.flag, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrMountFlag) {
			t.Errorf("Check(%q) = %v, not ErrMountFlag", c.flag, err)
		}
	}
}

func TestTableOwner(t *testing.T) {
	info := filepath.Join(t.TempDir(), "mountinfo")
	lines := "" +
		"21 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"30 21 7:3 / /k/plugins/a/globalmount rw - ext4 /dev/loop3 rw\n" +
		"31 21 7:3 / /k/pods/p/mount rw - ext4 /dev/loop3 rw\n" +
		"32 21 0:50 / /k/pods/n/mount rw - nfs4 10.0.0.5:/shares/share-1/ rw\n" +
		"33 21 8:1 /etc /k/pods/q/mount rw - ext4 /dev/sda1 rw\n"
	must(t, os.WriteFile(info, []byte(lines), 0o640))
	table, err := ReadTable(info)
	if err != nil {
		t.Fatal(err)
	}
	loop3 := unix.Mkdev(7, 3)
	cases := []struct {
		path string
		owns Owns
		want Ownership
	}{
		{"/k/plugins/a/globalmount", OnDevice(loop3), Owned},
		{"/k/pods/p/mount/", OnDevice(loop3), Owned},
		{"/k/pods/q/mount", OnDevice(loop3), Foreign},
		{"/k/pods/none", OnDevice(loop3), NotMounted},
		{"/k/pods/n/mount", FromSource("10.0.0.5:/shares/share-1"), Owned},
		{"/k/pods/n/mount", FromSource("10.0.0.5:/shares/share-2"), Foreign},
		{"/k/pods/n/mount", FromSource(""), Foreign},
	}
	for _, c := range cases {
		if _, got := table.Owner(c.path, c.owns); got != c.want {
			t.Errorf("Owner(%s) = %d, want %d", c.path, got, c.want)
		}
	}
	if n := len(table.OfDevice(loop3)); n != 2 {
		t.Errorf("OfDevice(7:3) = %d mounts, want 2", n)
	}
	var _ mount.MountInfo = table[0] //nolint:staticcheck // QF1011: the declared type is the point, a compile-time check that the table holds mount.MountInfo
}
