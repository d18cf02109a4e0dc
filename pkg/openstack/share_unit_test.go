package openstack

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
)

func TestPickShareMicroversionUsesUpTo273AndRefusesBelow237(t *testing.T) {
	tests := []struct {
		name      string
		highest   string
		announced bool
		want      ShareFeatures
		wantErr   bool
	}{
		{"zed", "2.73", true, ShareFeatures{Microversion: "2.73", AccessMetadata: true, SchedulerHints: true,
			SnapshotMetadata: true, AccessKeyInList: true, TransitionalAccess: true}, false},
		{"newer than we use", "2.84", true, ShareFeatures{Microversion: "2.73", AccessMetadata: true, SchedulerHints: true,
			SnapshotMetadata: true, AccessKeyInList: true, TransitionalAccess: true}, false},
		{"wallaby: hints but no snapshot metadata", "2.65", true, ShareFeatures{Microversion: "2.65", AccessMetadata: true,
			SchedulerHints: true, AccessKeyInList: true, TransitionalAccess: true}, false},
		{"stein: access metadata only", "2.51", true, ShareFeatures{Microversion: "2.51", AccessMetadata: true,
			AccessKeyInList: true, TransitionalAccess: true}, false},
		{"pike: the floor", "2.37", true, ShareFeatures{Microversion: "2.37", AccessKeyInList: true, TransitionalAccess: true}, false},
		{"ocata: too old", "2.32", true, ShareFeatures{}, true},
		{"no microversions", "", false, ShareFeatures{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var highest microversion
			if tt.highest != "" {
				highest = mustMV(tt.highest)
			}
			got, err := pickShareMicroversion(highest, tt.announced)
			if tt.wantErr {
				if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "2.37") {
					t.Fatalf("want KindConfig naming 2.37, got %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestClassifyManilaErrorBodies(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		kind   Kind
		inMsg  string
	}{
		{"share not found", 404, `{"itemNotFound": {"code": 404, "message": "Share 1f0c could not be found."}}`, KindNotFound, "could not be found"},
		{"delete with snapshots, as Zed sends it", 403, `{"forbidden": {"code": 403, "message": "Invalid share: %(reason)s."}}`, KindConflict, "Invalid share"},
		{"delete in a status Manila refuses", 403, `{"forbidden": {"message": "Invalid share: Share status must be one of ('available', 'error', 'inactive')."}}`, KindConflict, "status must be"},
		{"share still has snapshots", 403, `{"forbidden": {"message": "Share still has 1 dependent snapshots."}}`, KindConflict, "dependent"},
		{"policy refusal stays forbidden", 403, `{"forbidden": {"message": "Policy doesn't allow share:force_delete to be performed."}}`, KindForbidden, "Policy"},
		{"extend over quota as 403", 403, `{"forbidden": {"message": "Requested share exceeds allowed project/user or share type gigabytes quota."}}`, KindOverQuota, "quota"},
		{"create over quota", 413, `{"overLimit": {"code": 413, "message": "Requested share exceeds allowed project/user or share type gigabytes quota."}}`, KindOverQuota, "quota"},
		{"rule exists", 400, `{"badRequest": {"code": 400, "message": "Share access ip:10.0.0.5 exists."}}`, KindConflict, "exists"},
		{"shrink not smaller", 400, `{"badRequest": {"message": "New size for shrink must be less than current size: 1"}}`, KindBadRequest, "shrink"},
		{"extend not available", 400, `{"badRequest": {"message": "Invalid share: Share 1f0c status must be 'available'."}}`, KindConflict, "status must be"},
		{"protocol not enabled", 400, `{"badRequest": {"message": "Invalid share protocol provided: CIFS. It is either disabled or unsupported."}}`, KindBadRequest, "protocol"},
		{"unknown share type", 404, `{"itemNotFound": {"message": "Share type gold not found."}}`, KindNotFound, "gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifyShare(classify(httpErr(tt.status, tt.body, nil), "share_op", "s1"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			if e.Kind != tt.kind {
				t.Errorf("kind %v, want %v (%v)", e.Kind, tt.kind, e)
			}
			if !strings.Contains(e.Message, tt.inMsg) {
				t.Errorf("message %q lacks %q", e.Message, tt.inMsg)
			}
		})
	}
}

func TestShareErrorStatuses(t *testing.T) {
	for s, want := range map[string]bool{
		ShareError: true, ShareErrorDeleting: true, ShareExtendingError: true, ShareShrinkingError: true,
		"shrinking_possible_data_loss_error": true, "manage_error": true,
		ShareAvailable: false, ShareCreating: false, ShareCreatingFromSnapshot: false, ShareDeleting: false,
		ShareExtending: false, "reverting": false,
	} {
		if got := isShareErrorStatus(s); got != want {
			t.Errorf("isShareErrorStatus(%q) = %v", s, got)
		}
	}
}

func TestShareListQueryPagesByOffset(t *testing.T) {
	q, off, err := shareListQuery(ShareListOpts{Name: "pvc-1", Metadata: map[string]string{MetaManilaCluster: "k1"}, Limit: 5, Marker: "10"})
	if err != nil || off != 10 {
		t.Fatalf("offset %d, %v", off, err)
	}
	for _, want := range []string{"name=pvc-1", "limit=5", "offset=10", "metadata=%7B%22manila.csi.openstack.org%2Fcluster%22%3A%22k1%22%7D", "sort_key=created_at"} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %q", q, want)
		}
	}
	if got := shareNextMarker(10, 5, 5); got != "15" {
		t.Errorf("next marker %q, want 15", got)
	}
	if got := shareNextMarker(10, 3, 5); got != "" {
		t.Errorf("a short page has no successor, got %q", got)
	}
	if _, _, err := shareListQuery(ShareListOpts{Marker: "abc"}); KindOf(err) != KindBadRequest {
		t.Errorf("a foreign marker should be KindBadRequest, got %v", err)
	}
}

func TestAccessRuleWireNullKeyIsEmpty(t *testing.T) {
	var w []wireAccessRule
	body := `[{"id":"r1","access_type":"cephx","access_to":"alice","access_level":"rw","state":"queued_to_apply","access_key":null},
		{"id":"r2","access_type":"cephx","access_to":"bob","access_level":"rw","state":"active","access_key":"AQD-key=="}]`
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatal(err)
	}
	a, b := w[0].toRule("s1"), w[1].toRule("s1")
	if a.AccessKey != "" || a.ShareID != "s1" || accessReady(&a) {
		t.Errorf("queued rule with null key: %+v", a)
	}
	if b.AccessKey != "AQD-key==" || !accessReady(&b) {
		t.Errorf("active rule with key: %+v", b)
	}
	active := AccessRule{AccessType: AccessTypeCephx, State: AccessActive}
	if accessReady(&active) {
		t.Error("an active cephx rule without its key is not ready")
	}
	ip := AccessRule{AccessType: AccessTypeIP, State: AccessActive}
	if !accessReady(&ip) {
		t.Error("an active ip rule is ready")
	}
}

func TestShareCloudsFromSecretsValidatesWithoutNetwork(t *testing.T) {
	s := NewShareCloudsFrom(nil, Options{})
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := s.ForSecrets(ctx, map[string]string{"cloud": "east"})
	if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "os-*") {
		t.Errorf("no credentials and no cloud.conf: %v", err)
	}
	_, err = s.ForSecrets(ctx, map[string]string{"os-authURL": "http://127.0.0.1:1/v3", "os-userName": "u", "os-password": "pw-Sekrit-123"})
	if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "os-projectID or os-projectName") {
		t.Errorf("missing project: %v", err)
	}
	if strings.Contains(err.Error(), "pw-Sekrit-123") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestShareCloudsFromSecretsAuthenticatesOnceAndNeedsManila(t *testing.T) {
	ctx := ctxTimeout(t, 30*time.Second)
	secretsFor := func(e *emulator.Emulator, password string) map[string]string {
		return map[string]string{"os-authURL": e.AuthURL(), "os-region": "RegionOne", "os-userName": "demo",
			"os-password": password, "os-projectName": "demo", "os-domainName": "Default"}
	}
	t.Run("with Manila", func(t *testing.T) {
		e := startEmulator(t, emulator.Options{})
		rec := newRecorder()
		s := NewShareCloudsFrom(nil, Options{Observer: rec})
		_, err := s.ForSecrets(ctx, secretsFor(e, "wrong-Sekrit-1"))
		if KindOf(err) != KindForbidden || strings.Contains(err.Error(), "wrong-Sekrit-1") {
			t.Errorf("wrong password: want KindForbidden without the value, got %v", err)
		}
		if len(s.cache) != 0 {
			t.Errorf("a failed cloud must not be cached (%d entries)", len(s.cache))
		}
		sc, err := s.ForSecrets(ctx, secretsFor(e, "demo-secret"))
		if err != nil {
			t.Fatalf("ForSecrets: %v", err)
		}
		again, err := s.ForSecrets(ctx, withKey(secretsFor(e, "demo-secret"), "cloud", "ignored"))
		if err != nil || again != sc {
			t.Errorf("the same os-* secrets should give the cached cloud: %v", err)
		}
		if n := rec.count(func(r *recorder) int { return r.requests["identity token_issue"] }); n != 2 {
			t.Errorf("token requests = %d, want 2 (the wrong password and one for both good calls)", n)
		}
	})
	t.Run("without Manila", func(t *testing.T) {
		e := startEmulator(t, emulator.Options{Manila: manila.Options{Disabled: true}})
		s := NewShareCloudsFrom(nil, Options{})
		_, err := s.ForSecrets(ctx, secretsFor(e, "demo-secret"))
		if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "sharev2") {
			t.Errorf("a cloud without Manila: want KindConfig naming sharev2, got %v", err)
		}
		// The same cloud still serves Cinder.
		c := mustGet(t, newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1}), "")
		if _, err := c.ListVolumes(ctx, ListOpts{}); err != nil {
			t.Errorf("Cinder on a cloud without Manila: %v", err)
		}
		if _, err := c.ShareFeatures(ctx); KindOf(err) != KindConfig {
			t.Errorf("ShareFeatures without Manila: want KindConfig, got %v", err)
		}
	})
}

func withKey(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

// TestTLSFromSecretCAContent: os-certAuthority (PEM text in the secret)
// trusts the server like ca-file does; non-PEM content is KindConfig.
func TestTLSFromSecretCAContent(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	cc, err := config.FromSecrets(map[string]string{"os-authURL": srv.URL + "/v3", "os-userID": "u", "os-password": "p",
		"os-projectID": "p", "os-certAuthority": pemText})
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCloud(config.SecretsCloudName, cc, config.BlockStorage{}, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.provider.Request(context.Background(), "GET", srv.URL+"/", &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Errorf("with os-certAuthority: %v", err)
	}
	bad := *cc
	bad.CAData = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"
	if _, err := newCloud(config.SecretsCloudName, &bad, config.BlockStorage{}, &Options{}); KindOf(err) != KindConfig ||
		!strings.Contains(err.Error(), "os-certAuthority") {
		t.Errorf("unparsable os-certAuthority: want KindConfig naming it, got %v", err)
	}
}

func TestAccessRuleNeverPrintsItsKey(t *testing.T) {
	r := AccessRule{ID: "r1", ShareID: "s1", AccessType: AccessTypeCephx, AccessTo: "alice", AccessLevel: "rw",
		State: AccessActive, AccessKey: "AQBSekritKey==", Metadata: map[string]string{"n": "1"}}
	rules := []AccessRule{r}
	out := fmt.Sprintf("%v %+v %#v %s %q %v %+v %v", r, r, r, r, r, &r, &rules, map[string]AccessRule{"x": r})
	if strings.Contains(out, "AQBSekritKey") {
		t.Fatalf("the access key was printed: %s", out)
	}
	if !strings.Contains(out, "AccessKey:<redacted>") || !strings.Contains(out, "alice") {
		t.Errorf("the rule should show that it has a key and whom it grants: %s", out)
	}
}

func TestSecretsCloudCacheDropsTheLeastRecentlyUsed(t *testing.T) {
	s := NewShareCloudsFrom(nil, Options{})
	now := time.Now()
	var first [32]byte
	for i := 0; i <= maxSecretsClouds; i++ {
		var d [32]byte
		d[0], d[1] = byte(i), 1
		if i == 0 {
			first = d
		}
		s.cache[d] = &secretsCloud{used: now.Add(time.Duration(i) * time.Second)}
	}
	var newest [32]byte
	newest[0] = 0xff
	s.cache[newest] = &secretsCloud{used: now.Add(-time.Hour)} // just added, not yet marked used
	s.evictLocked(newest)
	if len(s.cache) != maxSecretsClouds {
		t.Fatalf("cache holds %d entries, want %d", len(s.cache), maxSecretsClouds)
	}
	if _, ok := s.cache[newest]; !ok {
		t.Error("the entry being added was evicted")
	}
	if _, ok := s.cache[first]; ok {
		t.Error("the least recently used entry was kept")
	}
}
