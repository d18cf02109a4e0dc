package openstack

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-csi/cinder-csi/pkg/config"
	"github.com/cinder-csi/cinder-csi/pkg/version"
)

// The emulator serves plain HTTP, so TLS and the user agent are checked
// against a small TLS server here.
func TestTLSFromCAFileAndUserAgent(t *testing.T) {
	var gotUA string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA = r.Header.Get("User-Agent")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	get := func(cc *config.Cloud) error {
		c, err := newCloud("", cc, config.BlockStorage{}, &Options{UserAgent: []string{"extra/1.0"}})
		if err != nil {
			return err
		}
		_, err = c.provider.Request(context.Background(), "GET", srv.URL+"/", &gophercloud.RequestOpts{OkCodes: []int{200}})
		return classify(err, "probe", "")
	}
	if err := get(&config.Cloud{AuthURL: srv.URL + "/v3", CAFile: caFile}); err != nil {
		t.Fatalf("with ca-file: %v", err)
	}
	if !strings.HasPrefix(gotUA, "cinder-csi/"+version.Version+" extra/1.0 gophercloud/") {
		t.Errorf("User-Agent = %q", gotUA)
	}
	if err := get(&config.Cloud{AuthURL: srv.URL + "/v3"}); KindOf(err) != KindUnavailable {
		t.Errorf("without the CA: %v, want KindUnavailable (unknown authority)", err)
	}
	if err := get(&config.Cloud{AuthURL: srv.URL + "/v3", TLSInsecure: true}); err != nil {
		t.Errorf("tls-insecure: %v", err)
	}
	if _, err := newCloud("", &config.Cloud{AuthURL: srv.URL, CAFile: "/nonexistent.pem"}, config.BlockStorage{}, &Options{}); KindOf(err) != KindConfig {
		t.Errorf("missing ca-file: %v", err)
	}
}
