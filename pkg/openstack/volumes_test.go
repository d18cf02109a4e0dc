package openstack

import (
	"fmt"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestVolumeLifecycleAndAttachments(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	rec := newRecorder()
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{Observer: rec, ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	owner := map[string]string{MetaCluster: "k1"}
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "pvc-1", SizeGiB: 2, Metadata: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "pvc-1", SizeGiB: 2, Metadata: map[string]string{MetaCluster: "other"}}); err != nil {
		t.Fatal(err)
	}
	found, err := c.FindVolumesByName(ctx, "pvc-1", owner)
	if err != nil || len(found) != 1 || found[0].ID != v.ID {
		t.Fatalf("FindVolumesByName = %v, %v", found, err)
	}
	if v, err = c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	srv, err := c.GetServer(ctx, emulator.DefaultServerID)
	if err != nil || srv.ID != emulator.DefaultServerID {
		t.Fatalf("GetServer = %+v, %v", srv, err)
	}
	if _, err := c.AttachVolume(ctx, srv.ID, v.ID, false); err != nil {
		t.Fatal(err)
	}
	v, err = c.WaitVolume(ctx, v.ID, func(v *Volume) bool { return v.Status == VolumeInUse })
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != srv.ID {
		t.Errorf("attachments = %+v", v.Attachments)
	}
	atts, err := c.ListServerAttachments(ctx, srv.ID)
	if err != nil || len(atts) != 1 || atts[0].VolumeID != v.ID {
		t.Errorf("ListServerAttachments = %+v, %v", atts, err)
	}
	if err := c.DeleteVolume(ctx, v.ID); KindOf(err) != KindConflict {
		t.Errorf("delete while attached = %v, want KindConflict", err)
	}
	if err := c.ExtendVolume(ctx, v.ID, 3, true); err != nil {
		t.Errorf("extend in-use: %v", err)
	}
	if _, err := c.WaitVolume(ctx, v.ID, func(v *Volume) bool { return v.Status == VolumeInUse && v.SizeGiB == 3 }); err != nil {
		t.Errorf("wait extend: %v", err)
	}
	if err := c.DetachVolume(ctx, srv.ID, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, CreateSnapshotOpts{Name: "snap-1", VolumeID: v.ID, Metadata: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitSnapshot(ctx, snap.ID, func(s *Snapshot) bool { return s.Status == SnapshotAvailable }); err != nil {
		t.Fatal(err)
	}
	if got, err := c.FindSnapshotsByName(ctx, "snap-1"); err != nil || len(got) != 1 {
		t.Errorf("FindSnapshotsByName = %v, %v", got, err)
	}
	if err := c.DeleteVolume(ctx, v.ID); KindOf(err) != KindConflict {
		t.Errorf("delete with snapshots = %v, want KindConflict", err)
	}
	bk, err := c.CreateBackup(ctx, CreateBackupOpts{Name: "bk-1", VolumeID: v.ID, Metadata: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitBackup(ctx, bk.ID, func(b *Backup) bool { return b.Status == BackupAvailable }); err != nil {
		t.Fatal(err)
	}
	restored, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "from-backup", SizeGiB: 3, BackupID: bk.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitVolume(ctx, restored.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	for _, del := range []func() error{
		func() error { return c.DeleteBackup(ctx, bk.ID) },
		func() error { return c.DeleteSnapshot(ctx, snap.ID) },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitSnapshot(ctx, snap.ID, func(*Snapshot) bool { return false }); !IsNotFound(err) {
		t.Errorf("wait on a deleted snapshot = %v, want not found", err)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitVolumeGone(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetVolume(ctx, v.ID); !IsNotFound(err) {
		t.Errorf("GetVolume after delete = %v", err)
	}

	// Catalogue and accounting.
	if zones, err := c.ListAvailabilityZones(ctx); err != nil || len(zones) == 0 {
		t.Errorf("zones = %v, %v", zones, err)
	}
	e.AddVolumeType("multi", map[string]string{"multiattach": "<is> True"})
	if vt, err := c.GetVolumeType(ctx, "multi"); err != nil || !vt.Multiattach {
		t.Errorf("GetVolumeType = %+v, %v", vt, err)
	}
	if _, err := c.GetVolumeType(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("unknown type = %v", err)
	}
	if l, err := c.GetLimits(ctx); err != nil || l.MaxTotalVolumeGigabytes == 0 {
		t.Errorf("GetLimits = %+v, %v", l, err)
	}
	if q, err := c.GetQuotaSet(ctx); err != nil || q.Gigabytes.Limit == 0 || q.Volumes.InUse == 0 {
		t.Errorf("GetQuotaSet = %+v, %v", q, err)
	}
	if got := rec.count(func(r *recorder) int { return r.requests["volumev3 volume_create"] }); got != 3 {
		t.Errorf("observer saw %d volume_create requests, want 3", got)
	}
	if got := rec.count(func(r *recorder) int { return r.requests["compute volume_attach"] }); got != 1 {
		t.Errorf("observer saw %d volume_attach requests, want 1", got)
	}
}

func TestListVolumesPaging(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	for i := 0; i < 7; i++ {
		if _, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: fmt.Sprintf("page-%d", i), SizeGiB: 1}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	marker := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		p, err := c.ListVolumes(ctx, ListOpts{Limit: 3, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Items {
			if seen[v.ID] {
				t.Fatalf("volume %s on two pages", v.ID)
			}
			seen[v.ID] = true
		}
		if p.NextMarker == "" {
			break
		}
		marker = p.NextMarker
	}
	if len(seen) != 7 {
		t.Errorf("paged through %d volumes, want 7", len(seen))
	}
}

func TestMicroversionDegradation(t *testing.T) {
	e := startEmulator(t, emulator.Options{MaxCinderMicroversion: "3.30", MaxNovaMicroversion: "2.50"})
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	f := c.Features()
	if f.CinderMicroversion != "3.30" || f.NameFilter || f.ExtendInUse || f.CreateFromBackup || f.BackupMetadata || f.NovaMultiattach {
		t.Fatalf("Features = %+v", f)
	}
	owner := map[string]string{MetaCluster: "k1"}
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "old-cloud", SizeGiB: 1, Metadata: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "other", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	// Without 3.34 the name filter runs here.
	got, err := c.FindVolumesByName(ctx, "old-cloud", owner)
	if err != nil || len(got) != 1 || got[0].ID != v.ID {
		t.Errorf("FindVolumesByName = %v, %v", got, err)
	}
	if err := c.ExtendVolume(ctx, v.ID, 2, true); KindOf(err) != KindConflict {
		t.Errorf("extend in-use below 3.42 = %v, want KindConflict", err)
	}
	if _, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "x", SizeGiB: 1, BackupID: "b"}); KindOf(err) != KindConflict {
		t.Errorf("create from backup below 3.47 = %v, want KindConflict", err)
	}
	if _, err := c.CreateBackup(ctx, CreateBackupOpts{Name: "b", VolumeID: v.ID, Metadata: owner}); KindOf(err) != KindConflict {
		t.Errorf("backup metadata below 3.43 = %v, want KindConflict", err)
	}
	if _, err := c.AttachVolume(ctx, emulator.DefaultServerID, v.ID, true); KindOf(err) != KindConflict {
		t.Errorf("multiattach below Nova 2.60 = %v, want KindConflict", err)
	}
	if _, err := c.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	if err := c.ExtendVolume(ctx, v.ID, 2, false); err != nil {
		t.Errorf("offline extend works at any microversion: %v", err)
	}

	t.Run("ignore-volume-microversion", func(t *testing.T) {
		e2 := startEmulator(t, emulator.Options{})
		s := newSet(t, []string{writeConf(t, e2.CloudConf("Global", "demo")+"[BlockStorage]\nignore-volume-microversion = true\n")}, Options{ReloadInterval: -1})
		f := mustGet(t, s, "").Features()
		if f.CinderMicroversion != baseCinderMicroversion || f.NameFilter || !f.NovaMultiattach {
			t.Errorf("Features = %+v", f)
		}
	})
	t.Run("a modern cloud gets the highest we need", func(t *testing.T) {
		e3 := startEmulator(t, emulator.Options{})
		s := newSet(t, []string{writeConf(t, e3.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
		f := mustGet(t, s, "").Features()
		if f.CinderMicroversion != wantCinder || !f.NameFilter || !f.ExtendInUse || !f.CreateFromBackup || !f.BackupMetadata || f.NovaMicroversion != wantNova {
			t.Errorf("Features = %+v", f)
		}
		// Version documents are read once per connection.
		if n := e3.Counters()["GET /volume/v3"]; n != 1 {
			t.Errorf("Cinder version document read %d times: %v", n, e3.Counters())
		}
	})
}
