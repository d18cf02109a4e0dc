package openstack

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// lostAnswerProxy forwards to the emulator, but for the first n requests
// matching method and path suffix it lets the service act and then
// replaces the answer with a 500: the case a lookup must resolve, since
// the emulator's own faults strike before the request is handled.
func lostAnswerProxy(t *testing.T, e *emulator.Emulator, method, suffix string, n int32) *httptest.Server {
	t.Helper()
	target, err := url.Parse(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var left atomic.Int32
	left.Store(n)
	proxy.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		if r.Method == method && strings.HasSuffix(r.URL.Path, suffix) && resp.StatusCode < 300 && left.Add(-1) >= 0 {
			resp.StatusCode = http.StatusInternalServerError
			resp.Body = http.NoBody
			resp.ContentLength = 0
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv
}

// confVia points a cloud.conf's auth-url at the proxy; the catalog follows
// the Host the emulator was reached by, so every call goes through it.
func confVia(e *emulator.Emulator, proxyURL string) string {
	return strings.ReplaceAll(e.CloudConf("Global", "demo"), e.URL(), proxyURL)
}

func TestCreateAfterLostAnswerAdoptsInsteadOfDuplicating(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	p := lostAnswerProxy(t, e, http.MethodPost, "/volumes", 1)
	s := newSet(t, []string{writeConf(t, confVia(e, p.URL))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 60*time.Second)
	meta := map[string]string{"cinder.csi.openstack.org/cluster": "test"}
	v, err := c.CreateVolume(ctx, CreateVolumeOpts{Name: "lost-answer", SizeGiB: 1, Metadata: meta})
	if err != nil {
		t.Fatalf("create whose answer was a 500 after Cinder acted: %v", err)
	}
	vols := e.Volumes()
	if len(vols) != 1 || vols[0].ID != v.ID {
		t.Fatalf("want exactly the adopted volume %s, emulator holds %+v", v.ID, vols)
	}
	if got := e.Counters()["POST /volume/v3/{project_id}/volumes"]; got != 1 {
		t.Errorf("%d create POSTs; the lookup should have found the first one's volume", got)
	}

	// A snapshot and an attachment whose answers were lost are adopted too.
	ps := lostAnswerProxy(t, e, http.MethodPost, "/snapshots", 1)
	c2 := mustGet(t, newSet(t, []string{writeConf(t, confVia(e, ps.URL))}, Options{ReloadInterval: -1}), "")
	if _, err := c2.WaitVolume(ctx, v.ID, isAvailable); err != nil {
		t.Fatal(err)
	}
	snap, err := c2.CreateSnapshot(ctx, CreateSnapshotOpts{Name: "lost-snap", VolumeID: v.ID, Metadata: meta})
	if err != nil {
		t.Fatalf("snapshot whose answer was lost: %v", err)
	}
	if snaps := e.Snapshots(); len(snaps) != 1 || snaps[0].ID != snap.ID {
		t.Fatalf("want exactly the adopted snapshot %s, emulator holds %+v", snap.ID, snaps)
	}

	pa := lostAnswerProxy(t, e, http.MethodPost, "/os-volume_attachments", 1)
	c3 := mustGet(t, newSet(t, []string{writeConf(t, confVia(e, pa.URL))}, Options{ReloadInterval: -1}), "")
	a, err := c3.AttachVolume(ctx, emulator.DefaultServerID, v.ID, false)
	if err != nil {
		t.Fatalf("attach whose answer was lost: %v", err)
	}
	if a.VolumeID != v.ID || len(e.Attachments()) != 1 {
		t.Fatalf("attach adopted %+v; emulator holds %+v", a, e.Attachments())
	}
}
