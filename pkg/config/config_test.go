package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fullConf = `
[Global]
auth-url = https://keystone.example:5000/v3
username = csi
user-id = uid-1
password = "p@ss;word#1"
tenant-id = tid
tenant-name = tname
domain-id = did
domain-name = dname
user-domain-id = udid
user-domain-name = udname
tenant-domain-id = tdid
tenant-domain-name = tdname
region = RegionTwo
os-endpoint-type = internal
ca-file = /etc/ca.pem
cert-file = /etc/cert.pem
key-file = /etc/key.pem
tls-insecure = true
application-credential-id = acid
application-credential-name = acname
application-credential-secret = acsecret
trust-id = trust
trustee-id = trustee
trustee-password = trusteepw
use-clouds = false
clouds-file = /etc/clouds.yaml
cloud = mycloud

[Global "east"]
auth-url = https://east.example/v3
application-credential-id = east-id
application-credential-secret = east-secret

[BlockStorage]
node-volume-attach-limit = 60
rescan-on-resize = true
ignore-volume-az = yes
ignore-volume-microversion = true

[Metadata]
search-order = metadataService,configDrive
request-timeout = 5s
`

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseReadsEveryReferenceKey(t *testing.T) {
	cfg, warns, err := Parse("cloud.conf", []byte(fullConf))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(warns) != 0 {
		t.Fatalf("warnings for known keys: %v", warns)
	}
	g := cfg.Clouds[""]
	want := Cloud{Name: "", AuthURL: "https://keystone.example:5000/v3", Username: "csi", UserID: "uid-1",
		Password: "p@ss;word#1", TenantID: "tid", TenantName: "tname", DomainID: "did", DomainName: "dname",
		UserDomainID: "udid", UserDomainName: "udname", TenantDomainID: "tdid", TenantDomainName: "tdname",
		Region: "RegionTwo", EndpointType: "internal", CAFile: "/etc/ca.pem", CertFile: "/etc/cert.pem",
		KeyFile: "/etc/key.pem", TLSInsecure: true, ApplicationCredentialID: "acid",
		ApplicationCredentialName: "acname", ApplicationCredentialSecret: "acsecret", TrustID: "trust",
		TrusteeID: "trustee", TrusteePassword: "trusteepw", CloudsFile: "/etc/clouds.yaml", CloudName: "mycloud",
		Sources: []string{"cloud.conf"}}
	if fmt.Sprintf("%#v", withSecrets(g)) != fmt.Sprintf("%#v", withSecrets(&want)) {
		t.Errorf("[Global]\n got %#v\nwant %#v", withSecrets(g), withSecrets(&want))
	}
	if e := cfg.Clouds["east"]; e == nil || e.ApplicationCredentialID != "east-id" || e.Name != "east" {
		t.Errorf(`[Global "east"] = %v`, e)
	}
	if bs := cfg.BlockStorage; bs != (BlockStorage{NodeVolumeAttachLimit: 60, RescanOnResize: true, IgnoreVolumeAZ: true, IgnoreVolumeMicroversion: true}) {
		t.Errorf("BlockStorage = %+v", bs)
	}
	if md := cfg.Metadata; md.SearchOrder != "metadataService,configDrive" || md.RequestTimeout != 5*time.Second {
		t.Errorf("Metadata = %+v", md)
	}
	if got := cfg.Names(); strings.Join(got, ",") != ",east" {
		t.Errorf("Names = %q", got)
	}
}

// withSecrets renders every field, secrets included, for comparisons in
// this test only.
type rawCloud Cloud

func withSecrets(c *Cloud) rawCloud { return rawCloud(*c) }

func TestUnknownKeysAreWarningsNotErrors(t *testing.T) {
	cfg, warns, err := Parse("/etc/cloud.conf", []byte("[Global]\nauth-url = http://k/v3\nbs-flavour = x\n[LoadBalancer]\nlb-version = v2\n[BlockStorage]\nbs-version = v3\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(warns) != 2 {
		t.Fatalf("want 2 warnings (unknown key, unknown section), got %q", warns)
	}
	for _, w := range warns {
		if !strings.Contains(w, "/etc/cloud.conf") {
			t.Errorf("warning does not name the file: %q", w)
		}
	}
	if cfg.Clouds[""].AuthURL != "http://k/v3" {
		t.Errorf("known key lost next to unknown ones")
	}
}

func TestNodeConfigNeedsNoCredentials(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.conf", "[BlockStorage]\nnode-volume-attach-limit = 20\n")
	cfg, _, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.BlockStorage.NodeVolumeAttachLimit != 20 || cfg.Metadata.SearchOrder != DefaultSearchOrder {
		t.Errorf("got %+v %+v", cfg.BlockStorage, cfg.Metadata)
	}
	if err := cfg.ValidateClouds(); err == nil || !strings.Contains(err.Error(), "no [Global] section") {
		t.Errorf("controller validation of a node-only file: %v", err)
	}
}

func TestLoadMergesLaterOverEarlier(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.conf", "[Global]\nauth-url = http://a/v3\nusername = u\npassword = old\nuser-domain-name = Default\ntenant-name = p\n[BlockStorage]\nrescan-on-resize = true\n")
	b := writeFile(t, dir, "b.conf", "[Global]\npassword = new\n[Global \"x\"]\nauth-url = http://x/v3\n[BlockStorage]\nrescan-on-resize = false\nnode-volume-attach-limit = 7\n")
	cfg, _, err := Load(a, b)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	g := cfg.Clouds[""]
	if g.Password != "new" || g.AuthURL != "http://a/v3" || g.Username != "u" {
		t.Errorf("merge: password=%t auth-url=%q username=%q", g.Password == "new", g.AuthURL, g.Username)
	}
	if strings.Join(g.Sources, ",") != a+","+b {
		t.Errorf("Sources = %v", g.Sources)
	}
	if cfg.BlockStorage.RescanOnResize || cfg.BlockStorage.NodeVolumeAttachLimit != 7 {
		t.Errorf("later false did not override earlier true: %+v", cfg.BlockStorage)
	}
	if cfg.Clouds["x"] == nil {
		t.Errorf("section only in the later file lost")
	}
}

func TestValidateNamesMissingKeyAndFile(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string
	}{
		{"no auth-url", "[Global]\nusername = u\npassword = p\nuser-domain-name = D\ntenant-id = t\n", []string{"missing auth-url"}},
		{"no password", "[Global]\nauth-url = http://k/v3\nusername = u\nuser-domain-name = D\ntenant-id = t\n", []string{"missing password"}},
		{"no user domain", "[Global]\nauth-url = http://k/v3\nusername = u\npassword = p\ntenant-id = t\n", []string{"user-domain-name"}},
		{"app cred without secret", "[Global \"e\"]\nauth-url = http://k/v3\napplication-credential-id = x\n", []string{`[Global "e"]`, "missing application-credential-secret"}},
		{"app cred name without user", "[Global]\nauth-url = http://k/v3\napplication-credential-name = n\napplication-credential-secret = s\n", []string{"username or user-id"}},
		{"trust without trustee", "[Global]\nauth-url = http://k/v3\ntrust-id = t\n", []string{"trustee-id", "trustee-password"}},
		{"bad endpoint type", "[Global]\nauth-url = http://k/v3\ntoken = tok\nos-endpoint-type = private\n", []string{"os-endpoint-type"}},
		{"half a client cert", "[Global]\nauth-url = http://k/v3\ntoken = tok\ncert-file = /c\n", []string{"cert-file and key-file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeFile(t, dir, "cloud.conf", tc.conf)
			cfg, _, err := Load(p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			err = cfg.ValidateClouds()
			if err == nil {
				t.Fatal("ValidateClouds accepted it")
			}
			for _, w := range append(tc.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateAcceptsEveryAuthVariant(t *testing.T) {
	for name, conf := range map[string]string{
		"password by name":  "username = u\npassword = p\nuser-domain-name = D\ntenant-name = t\n",
		"password by id":    "user-id = u\npassword = p\ntenant-id = t\n",
		"app cred by id":    "application-credential-id = i\napplication-credential-secret = s\n",
		"app cred by name":  "application-credential-name = n\napplication-credential-secret = s\nusername = u\nuser-domain-id = default\n",
		"trust":             "trust-id = t\ntrustee-id = u\ntrustee-password = p\n",
		"token":             "token = abc\n",
		"domain fallback":   "username = u\npassword = p\ndomain-name = D\ntenant-name = t\n",
		"tenant-domain set": "user-id = u\npassword = p\ntenant-name = t\ntenant-domain-id = d\n",
	} {
		cfg, _, err := Parse("c", []byte("[Global]\nauth-url = https://k/v3\n"+conf))
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if err := cfg.ValidateClouds(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBadValuesNameKeyAndFileButNotValue(t *testing.T) {
	for _, tc := range []struct{ conf, key string }{
		{"[Global]\ntls-insecure = sekrit-value\n", "tls-insecure"},
		{"[BlockStorage]\nnode-volume-attach-limit = sekrit-value\n", "node-volume-attach-limit"},
		{"[BlockStorage]\nnode-volume-attach-limit = 300\n", "node-volume-attach-limit"},
		{"[BlockStorage]\nrescan-on-resize = sekrit-value\n", "rescan-on-resize"},
		{"[Metadata]\nsearch-order = sekrit-value\n", "search-order"},
		{"[Metadata]\nrequest-timeout = sekrit-value\n", "request-timeout"},
	} {
		_, _, err := Parse("/etc/my.conf", []byte(tc.conf))
		if err == nil {
			t.Errorf("%q accepted", tc.conf)
			continue
		}
		if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "/etc/my.conf") {
			t.Errorf("error %q should name %s and the file", err, tc.key)
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("error %q echoes the value", err)
		}
	}
}

func TestSyntaxErrorDoesNotEchoSecret(t *testing.T) {
	_, _, err := Parse("c.conf", []byte("[Global]\npassword = \"unterminated-sekrit\n"))
	if err == nil {
		t.Fatal("accepted an unterminated quote")
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("error echoes the value: %q", err)
	}
}

func TestSecretsNeverFormatted(t *testing.T) {
	cfg, _, err := Parse("c", []byte(fullConf+"\n[Global \"tok\"]\ntoken = tok-sekrit\n"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"p@ss;word#1", "acsecret", "trusteepw", "east-secret", "tok-sekrit"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, cfg.Clouds[""]), fmt.Sprintf(verb, cfg.Clouds["tok"]))
	}
	outs = append(outs, cfg.Redacted(), cfg.String())
	for _, o := range outs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Fatalf("secret %q printed in %q", s, o)
			}
		}
	}
	if !strings.Contains(cfg.Clouds[""].String(), "password=<redacted>") {
		t.Errorf("String should show that a password is set: %s", cfg.Clouds[""])
	}
}

func TestCloudsYAMLFillsWhatCloudConfLeavesOut(t *testing.T) {
	dir := t.TempDir()
	yml := writeFile(t, dir, "clouds.yaml", `
clouds:
  prod:
    auth:
      auth_url: https://yaml.example/v3
      username: yaml-user
      password: yaml-pass
      project_name: yaml-project
      user_domain_name: Default
      project_domain_name: Default
    region_name: YamlRegion
    interface: internal
`)
	conf := writeFile(t, dir, "cloud.conf", "[Global]\nuse-clouds = true\nclouds-file = "+yml+"\ncloud = prod\nregion = ConfRegion\n")
	cfg, _, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateClouds(); err != nil {
		t.Fatalf("ValidateClouds: %v", err)
	}
	g := cfg.Clouds[""]
	if g.AuthURL != "https://yaml.example/v3" || g.Username != "yaml-user" || g.Password != "yaml-pass" ||
		g.TenantName != "yaml-project" || g.EndpointType != "internal" {
		t.Errorf("clouds.yaml values not used: %s", g)
	}
	if g.Region != "ConfRegion" {
		t.Errorf("cloud.conf key should win: region %q", g.Region)
	}

	missing := writeFile(t, dir, "c2.conf", "[Global]\nuse-clouds = true\nclouds-file = "+yml+"\ncloud = nope\n")
	cfg, _, _ = Load(missing)
	if err := cfg.ValidateClouds(); err == nil || !strings.Contains(err.Error(), `cloud "nope" not found in `+yml) {
		t.Errorf("unknown clouds.yaml entry: %v", err)
	}
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	_, _, err := Load("/nonexistent/cloud.conf")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/cloud.conf") {
		t.Errorf("err = %v", err)
	}
}
