package openstack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func TestMultiCloudSelection(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	conf := writeConf(t, e.CloudConf("Global", "demo")+e.CloudConf(`Global "second"`, "second"))
	s := newSet(t, []string{conf}, Options{ReloadInterval: -1})
	if got := strings.Join(s.Names(), ","); got != ",second" {
		t.Fatalf("Names = %q", got)
	}
	ctx := ctxTimeout(t, 30*time.Second)
	demo, second := mustGet(t, s, ""), mustGet(t, s, "second")
	v1, err := demo.CreateVolume(ctx, CreateVolumeOpts{Name: "in-demo", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := second.CreateVolume(ctx, CreateVolumeOpts{Name: "in-second", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.GetVolume(ctx, v1.ID); !IsNotFound(err) {
		t.Errorf("second sees demo's volume: %v", err)
	}
	if got, err := demo.FindVolumesByName(ctx, "in-second", nil); err != nil || len(got) != 0 {
		t.Errorf("demo finds second's volume: %v %v", got, err)
	}
	if got, err := second.FindVolumesByName(ctx, "in-second", nil); err != nil || len(got) != 1 || got[0].ID != v2.ID {
		t.Errorf("second cannot find its own volume: %v %v", got, err)
	}
	_, err = s.Get("third")
	if KindOf(err) != KindConfig || !strings.Contains(err.Error(), `"third"`) {
		t.Errorf("Get(third) = %v", err)
	}
}

func TestConfigMergeAndErrorsThroughNewClouds(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	full := e.CloudConf("Global", "demo")
	var withoutPassword []string
	for _, l := range strings.Split(full, "\n") {
		if !strings.HasPrefix(l, "password") {
			withoutPassword = append(withoutPassword, l)
		}
	}
	base := writeConf(t, strings.Join(withoutPassword, "\n")+"\n[BlockStorage]\nrescan-on-resize = true\n")
	secret := writeConf(t, "[Global]\npassword = demo-secret\n")

	t.Run("later file supplies the password", func(t *testing.T) {
		s := newSet(t, []string{base, secret}, Options{ReloadInterval: -1})
		if _, err := mustGet(t, s, "").GetLimits(ctxTimeout(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if !s.Config().BlockStorage.RescanOnResize {
			t.Error("[BlockStorage] from the first file lost")
		}
	})
	t.Run("missing password names key and file", func(t *testing.T) {
		_, err := NewClouds(context.Background(), []string{base}, Options{ReloadInterval: -1})
		if err == nil || !strings.Contains(err.Error(), "missing password") || !strings.Contains(err.Error(), base) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("selected cloud missing", func(t *testing.T) {
		_, err := NewClouds(context.Background(), []string{base, secret}, Options{CloudNames: []string{"east"}, ReloadInterval: -1})
		if err == nil || !strings.Contains(err.Error(), `[Global "east"]`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("wrong password is KindForbidden and does not echo it", func(t *testing.T) {
		bad := writeConf(t, "[Global]\npassword = not-the-sekrit\n")
		_, err := NewClouds(context.Background(), []string{base, bad}, Options{ReloadInterval: -1})
		if KindOf(err) != KindForbidden || strings.Contains(err.Error(), "not-the-sekrit") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestCredentialRotationWithoutRestart rotates the password twice: once
// noticed by the file watch, once only through the 401 that follows.
func TestCredentialRotationWithoutRestart(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	conf := writeConf(t, e.CloudConf("Global", "demo"))
	ctx := ctxTimeout(t, 60*time.Second)

	t.Run("file watch", func(t *testing.T) {
		s := newSet(t, []string{conf}, Options{ReloadInterval: 20 * time.Millisecond})
		c := mustGet(t, s, "")
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatal(err)
		}
		e.SetUserPassword("demo", "rotated-1")
		rewrite(t, conf, strings.Replace(e.CloudConf("Global", "demo"), "demo-secret", "rotated-1", 1))
		// Wait (bounded by ctx) until the watcher has read the new file.
		for c.creds.Load().Password != "rotated-1" {
			if ctx.Err() != nil {
				t.Fatal("watcher never picked up the new file")
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.ExpireTokens()
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
		if got, _ := s.Get(""); got.(*cloud) != c {
			t.Error("a credentials-only change should keep the cloud (and its connection)")
		}
	})

	t.Run("401 triggers a re-read", func(t *testing.T) {
		rewrite(t, conf, strings.Replace(e.CloudConf("Global", "demo"), "demo-secret", "rotated-1", 1))
		s := newSet(t, []string{conf}, Options{ReloadInterval: -1}) // no watch
		c := mustGet(t, s, "")
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatal(err)
		}
		e.SetUserPassword("demo", "rotated-2")
		rewrite(t, conf, strings.Replace(e.CloudConf("Global", "demo"), "demo-secret", "rotated-2", 1))
		e.ExpireTokens()
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	})

	t.Run("a broken file keeps the old config", func(t *testing.T) {
		s := newSet(t, []string{conf}, Options{ReloadInterval: -1})
		c := mustGet(t, s, "")
		rewrite(t, conf, "[Global]\nusername = half-written\n")
		if s.reloadNow(ctx) {
			t.Error("an invalid file was applied")
		}
		if _, err := c.GetLimits(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an endpoint change builds a new cloud", func(t *testing.T) {
		rewrite(t, conf, strings.Replace(e.CloudConf("Global", "demo"), "demo-secret", "rotated-2", 1))
		s := newSet(t, []string{conf}, Options{ReloadInterval: -1})
		old := mustGet(t, s, "")
		rewrite(t, conf, strings.Replace(e.CloudConf("Global", "demo"), "demo-secret", "rotated-2", 1)+"os-endpoint-type = public\n")
		if !s.reloadNow(ctx) {
			t.Fatal("change not applied")
		}
		if nc := mustGet(t, s, ""); nc == old {
			t.Error("cloud not replaced")
		} else if _, err := nc.GetLimits(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
