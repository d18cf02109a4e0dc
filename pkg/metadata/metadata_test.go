package metadata

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const novaDocument = `{
  "uuid": "83679162-1378-4288-a2d4-70e13ec132aa",
  "name": "worker-1",
  "availability_zone": "zone a/1",
  "hostname": "worker-1.novalocal",
  "launch_index": 0,
  "meta": {"role": "k8s"},
  "devices": [
    {"type": "nic", "bus": "pci", "address": "0000:00:03.0", "mac": "fa:16:3e:00:00:01", "tags": ["eth"]},
    {"type": "disk", "bus": "pci", "serial": "b9f3c1f4-0000-4d8e-9c59-5e6f3a6f0001", "address": "0000:00:07.0", "path": "/dev/vdb", "tags": []},
    {"type": "disk", "bus": "scsi", "serial": "c0ffee00-0000-4d8e-9c59-5e6f3a6f0002", "address": "0:0:0:1", "tags": ["db"]}
  ]
}`

func TestParseReadsIdentityAndDevices(t *testing.T) {
	md, err := Parse([]byte(novaDocument))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if md.UUID != "83679162-1378-4288-a2d4-70e13ec132aa" || md.Name != "worker-1" || md.AvailabilityZone != "zone a/1" {
		t.Fatalf("Parse identity = %+v", md)
	}
	if len(md.Devices) != 3 {
		t.Fatalf("Parse devices = %d, want 3", len(md.Devices))
	}
	d := md.DiskBySerial("c0ffee00-0000-4d8e-9c59-5e6f3a6f0002")
	if d == nil || d.Bus != "scsi" || d.Address != "0:0:0:1" {
		t.Fatalf("DiskBySerial(scsi volume) = %+v", d)
	}
	if md.DiskBySerial("fa:16:3e:00:00:01") != nil {
		t.Fatal("DiskBySerial matched a NIC")
	}
}

func TestParseRefusesUnusableDocuments(t *testing.T) {
	cases := map[string]string{
		"not JSON":           `uuid=abc`,
		"no uuid":            `{"name": "x"}`,
		"blank uuid":         `{"uuid": "  "}`,
		"uuid with slash":    `{"uuid": "../etc"}`,
		"uuid with space":    `{"uuid": "a b"}`,
		"uuid wrong type":    `{"uuid": 42}`,
		"devices wrong type": `{"uuid": "a", "devices": {}}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); !errors.Is(err, ErrBadMetadata) {
				t.Fatalf("Parse(%s) error = %v, want ErrBadMetadata", doc, err)
			}
		})
	}
}

func TestSanitizeLabel(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nova", "nova"},
		{"zone a/1", "zone-a-1"},
		{"  az:::1  ", "az-1"},
		{"-_.edge_.-", "edge"},
		{"région-1", "r-gion-1"},
		{"", ""},
		{"###", ""},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		// The cut lands on a '-': it must be trimmed, or the label is invalid.
		{strings.Repeat("a", 62) + "-b", strings.Repeat("a", 62)},
	}
	for _, c := range cases {
		if got := SanitizeLabel(c.in); got != c.want {
			t.Errorf("SanitizeLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseSearchOrder(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", []string{SourceConfigDrive, SourceMetadataService}, false},
		{"metadataService", []string{SourceMetadataService}, false},
		{" metadataService , configDrive ", []string{SourceMetadataService, SourceConfigDrive}, false},
		{"configDrive,", []string{SourceConfigDrive}, false},
		{"configdrive", nil, true},
		{"configDrive,configDrive", nil, true},
		{",", nil, true},
	}
	for _, c := range cases {
		got, err := ParseSearchOrder(c.in)
		if (err != nil) != c.wantErr || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ParseSearchOrder(%q) = %v, %v; want %v, error %t", c.in, got, err, c.want, c.wantErr)
		}
	}
}

// fakeSource is a scripted source for order and retry tests.
type fakeSource struct {
	label string
	docs  []string // returned in turn; "" means fail
	calls atomic.Int32
}

func (f *fakeSource) name() string { return f.label }
func (f *fakeSource) read(context.Context) ([]byte, error) {
	i := int(f.calls.Add(1)) - 1
	if i >= len(f.docs) {
		i = len(f.docs) - 1
	}
	if f.docs[i] == "" {
		return nil, errors.New(f.label + " unavailable")
	}
	return []byte(f.docs[i]), nil
}

func TestGetFollowsSearchOrderAndCaches(t *testing.T) {
	drive := &fakeSource{label: SourceConfigDrive, docs: []string{""}}
	service := &fakeSource{label: SourceMetadataService, docs: []string{`{"uuid": "from-service"}`}}
	c := &Client{sources: []source{drive, service}, live: service}
	md, err := c.Get(context.Background())
	if err != nil || md.UUID != "from-service" {
		t.Fatalf("Get = %+v, %v; want the metadata service's document after the config drive failed", md, err)
	}
	if _, err := c.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if drive.calls.Load() != 1 || service.calls.Load() != 1 {
		t.Fatalf("sources read %d and %d times, want once each: the first success is cached", drive.calls.Load(), service.calls.Load())
	}

	first := &fakeSource{label: SourceConfigDrive, docs: []string{`{"uuid": "from-drive"}`}}
	second := &fakeSource{label: SourceMetadataService, docs: []string{`{"uuid": "from-service"}`}}
	c = &Client{sources: []source{first, second}, live: second}
	if md, _ := c.Get(context.Background()); md.UUID != "from-drive" || second.calls.Load() != 0 {
		t.Fatalf("Get = %+v after %d service calls; want the first source only", md, second.calls.Load())
	}
}

func TestGetRetriesUntilASourceAnswers(t *testing.T) {
	service := &fakeSource{label: SourceMetadataService, docs: []string{"", `{"uuid": "bad/uuid"}`, `{"uuid": "late"}`}}
	c := &Client{sources: []source{service}, live: service}
	md, err := c.Get(context.Background())
	if err != nil || md.UUID != "late" {
		t.Fatalf("Get = %+v, %v; want the third answer", md, err)
	}
	if n := service.calls.Load(); n != 3 {
		t.Fatalf("service read %d times, want 3", n)
	}
}

func TestGetStopsAtTheContextDeadline(t *testing.T) {
	service := &fakeSource{label: SourceMetadataService, docs: []string{""}}
	c := &Client{sources: []source{service}, live: service}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "metadataService unavailable") {
		t.Fatalf("Get error = %v, want the deadline and the last source error", err)
	}
}

func TestMetadataServiceOverHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/openstack/latest/meta_data.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(novaDocument))
	}))
	defer srv.Close()
	c, err := New(Options{SearchOrder: SourceMetadataService, URL: srv.URL + "/openstack/latest/meta_data.json"})
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.Get(context.Background())
	if err != nil || md.UUID != "83679162-1378-4288-a2d4-70e13ec132aa" {
		t.Fatalf("Get = %+v, %v", md, err)
	}
	devices, err := c.Devices(context.Background())
	if err != nil || len(devices) != 3 {
		t.Fatalf("Devices = %v, %v", devices, err)
	}
	if hits.Load() != 2 {
		t.Fatalf("server hit %d times, want 2: Devices is never cached", hits.Load())
	}
}

func TestMetadataServiceErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			_, _ = w.Write([]byte(`{"uuid":"` + strings.Repeat("a", maxDocumentBytes) + `"}`))
		case "/slow":
			<-r.Context().Done()
		default:
			http.Error(w, "nope", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for path, want := range map[string]string{"/503": "503", "/huge": "larger than", "/slow": "Timeout"} {
		s := newMetadataService(srv.URL+path, 200*time.Millisecond)
		if _, err := s.read(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("read(%s) error = %v, want it to mention %q", path, err, want)
		}
	}
}

func TestMetadataServiceIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"uuid":"direct"}`))
	}))
	defer srv.Close()
	data, err := newMetadataService(srv.URL, time.Second).read(context.Background())
	if err != nil || !strings.Contains(string(data), "direct") {
		t.Fatalf("read through a proxy environment = %q, %v; want a direct request", data, err)
	}
}

func TestConfigDriveDirectory(t *testing.T) {
	dir := t.TempDir()
	writeDocument(t, dir, novaDocument)
	c, err := New(Options{SearchOrder: SourceConfigDrive, ConfigDriveDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.Get(context.Background())
	if err != nil || md.Name != "worker-1" {
		t.Fatalf("Get from a config drive tree = %+v, %v", md, err)
	}
	// Devices falls back to the config drive when it is the only source.
	if devices, err := c.Devices(context.Background()); err != nil || len(devices) != 3 {
		t.Fatalf("Devices = %v, %v", devices, err)
	}
}

func TestConfigDriveWithoutDevice(t *testing.T) {
	d := newConfigDrive(t.TempDir(), "")
	d.findByBlkid = nil
	if _, err := d.read(context.Background()); err == nil || !strings.Contains(err.Error(), "config-2") {
		t.Fatalf("read without a config-2 device: %v", err)
	}
}

func writeDocument(t *testing.T, root, doc string) {
	t.Helper()
	path := filepath.Join(root, configDriveDocument)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(novaDocument))
	f.Add([]byte(`{"uuid":"a"}`))
	f.Add([]byte(`{"uuid":"a","devices":[{"type":"disk","bus":"pci","serial":"x","address":"0000:00:07.0"}]}`))
	f.Add([]byte(`{"uuid":null,"availability_zone":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrBadMetadata) {
				t.Fatalf("Parse error %v does not wrap ErrBadMetadata", err)
			}
			return
		}
		if md.UUID == "" || !isPrintableToken(md.UUID) {
			t.Fatalf("Parse accepted uuid %q", md.UUID)
		}
		label := SanitizeLabel(md.AvailabilityZone)
		if len(label) > maxLabelValueLength || notLabelChars.MatchString(label) || strings.Trim(label, "-_.") != label {
			t.Fatalf("SanitizeLabel(%q) = %q is not a valid label value", md.AvailabilityZone, label)
		}
		for _, d := range md.Devices {
			_ = md.DiskBySerial(d.Serial)
		}
	})
}
