package emulator

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/backups"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

func TestSnapshots(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 1})
	attach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")

	cases := []struct {
		name  string
		mv    string
		force bool
		want  int
	}{
		{"in-use without force", "", false, 400},
		{"in-use with force", "", true, 0},
		{"in-use at 3.66 without force", "3.66", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := c.vol
			if tc.mv != "" {
				cl = withMV(c.vol, tc.mv)
			}
			s, err := snapshots.Create(ctx, cl, snapshots.CreateOpts{VolumeID: v.ID, Force: tc.force, Name: tc.name, Metadata: map[string]string{"k": tc.name}}).Extract()
			if tc.want != 0 {
				if !gophercloud.ResponseCodeIs(err, tc.want) {
					t.Fatalf("want %d got %v", tc.want, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != "creating" || s.VolumeID != v.ID || s.Size != 1 {
				t.Fatalf("snapshot %+v", s)
			}
		})
	}
	eventually(t, "two snapshots available", func() bool {
		pages, err := snapshots.List(c.vol, snapshots.ListOpts{Status: "available", VolumeID: v.ID}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss, _ := snapshots.ExtractSnapshots(pages)
		return len(ss) == 2
	})
	pages, err := snapshots.List(c.vol, snapshots.ListOpts{Name: "in-use with force"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := snapshots.ExtractSnapshots(pages)
	if len(ss) != 1 || ss[0].Metadata["k"] != "in-use with force" {
		t.Fatalf("by name %+v", ss)
	}
	// Restore a snapshot into a new volume, then delete the snapshot.
	nv := createVolume(t, c.vol, volumes.CreateOpts{SnapshotID: ss[0].ID})
	if nv.Size != 1 || nv.SnapshotID != ss[0].ID {
		t.Fatalf("restored %+v", nv)
	}
	if err := snapshots.Delete(ctx, c.vol, ss[0].ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "snapshot gone", func() bool {
		_, err := snapshots.Get(ctx, c.vol, ss[0].ID).Extract()
		return gophercloud.ResponseCodeIs(err, 404)
	})
	// Over the snapshot quota is 413.
	e.SetQuota("demo", 1000, 100, 1, 100)
	_, err = snapshots.Create(ctx, c.vol, snapshots.CreateOpts{VolumeID: nv.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, 413) {
		t.Fatalf("snapshot quota: %v", err)
	}
}

func TestBackupsAndRestore(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e)
	ctx := context.Background()
	v := createVolume(t, c.vol, volumes.CreateOpts{Size: 2, Name: "src"})

	b, err := backups.Create(ctx, c.vol, backups.CreateOpts{VolumeID: v.ID, Name: "bk"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var got *backups.Backup
	eventually(t, "backup available", func() bool {
		got, err = backups.Get(ctx, c.vol, b.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return got.Status == "available"
	})
	if got.Size != 2 || got.VolumeID != v.ID || got.Name != "bk" {
		t.Fatalf("backup %+v", got)
	}
	waitVolume(t, c.vol, v.ID, "available")
	for _, detail := range []bool{false, true} {
		var pages interface{ IsEmpty() (bool, error) }
		if detail {
			pages, err = backups.ListDetail(c.vol, nil).AllPages(ctx)
		} else {
			pages, err = backups.List(c.vol, nil).AllPages(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if empty, _ := pages.IsEmpty(); empty {
			t.Fatalf("no backups listed (detail=%v)", detail)
		}
	}

	// Restore via volume create needs 3.47.
	_, err = volumes.Create(ctx, c.vol, volumes.CreateOpts{BackupID: b.ID}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("backup_id at 3.0: %v", err)
	}
	c47 := withMV(c.vol, "3.47")
	nv, err := volumes.Create(ctx, c47, volumes.CreateOpts{BackupID: b.ID, Name: "restored"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	restored := waitVolume(t, c47, nv.ID, "available")
	if restored.Size != 2 || restored.BackupID == nil || *restored.BackupID != b.ID {
		t.Fatalf("restored %+v", restored)
	}
	// The restore action onto a new volume.
	rr, err := backups.RestoreFromBackup(ctx, c.vol, b.ID, backups.RestoreOpts{Name: "via-action"}).Extract()
	if err != nil || rr.BackupID != b.ID {
		t.Fatalf("restore action %+v %v", rr, err)
	}
	waitVolume(t, c.vol, rr.VolumeID, "available")

	// In-use volumes need force.
	attach(t, c, DefaultServerID, v.ID)
	waitVolume(t, c.vol, v.ID, "in-use")
	if _, err := backups.Create(ctx, c.vol, backups.CreateOpts{VolumeID: v.ID}).Extract(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("backup in-use without force: %v", err)
	}
	b2, err := backups.Create(ctx, c.vol, backups.CreateOpts{VolumeID: v.ID, Force: true}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "second backup", func() bool {
		g, _ := backups.Get(ctx, c.vol, b2.ID).Extract()
		return g != nil && g.Status == "available"
	})
	waitVolume(t, c.vol, v.ID, "in-use")

	for _, id := range []string{b.ID, b2.ID} {
		if err := backups.Delete(ctx, c.vol, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "backups gone", func() bool { return len(e.Backups()) == 0 })
}
