package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// passwordSecrets is a complete password-auth Secret as the reference
// plugin's docs show it.
func passwordSecrets() map[string]string {
	return map[string]string{
		"os-authURL":     "https://keystone.example:5000/v3",
		"os-region":      "RegionOne",
		"os-userName":    "demo",
		"os-password":    "pw-Sekrit-123",
		"os-projectName": "demo",
		"os-domainName":  "Default",
	}
}

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestFromSecretsMapsEveryReferenceKey(t *testing.T) {
	in := map[string]string{
		"os-authURL": "https://k:5000/v3", "os-region": "R2", "os-endpointType": "internal",
		"os-userName": "u", "os-userID": "uid", "os-password": "pw-Sekrit-1",
		"os-projectName": "p", "os-projectID": "pid", "os-domainName": "d", "os-domainID": "did",
		"os-userDomainName": "ud", "os-userDomainID": "udid", "os-projectDomainName": "pd", "os-projectDomainID": "pdid",
		"os-certAuthority": testPEM, "os-TLSInsecure": "true",
		"os-clientCertPath": "/c.pem", "os-clientKeyPath": "/k.pem",
		"cloud": "ignored", "userKey": "not ours",
	}
	c, err := FromSecrets(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Cloud{Name: SecretsCloudName, AuthURL: "https://k:5000/v3", Region: "R2", EndpointType: "internal",
		Username: "u", UserID: "uid", Password: "pw-Sekrit-1", TenantName: "p", TenantID: "pid",
		DomainName: "d", DomainID: "did", UserDomainName: "ud", UserDomainID: "udid",
		TenantDomainName: "pd", TenantDomainID: "pdid", CAData: strings.TrimSpace(testPEM), TLSInsecure: true,
		CertFile: "/c.pem", KeyFile: "/k.pem"}
	got := *c
	got.Sources = nil
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) || got.Password != want.Password {
		t.Errorf("got %#v\nwant %#v", &got, &want)
	}
}

func TestFromSecretsAcceptsEveryAuthVariant(t *testing.T) {
	tests := []struct {
		name    string
		secrets map[string]string
		method  AuthMethod
	}{
		{"password by user name", passwordSecrets(), AuthPassword},
		{"password by user id and project id", map[string]string{"os-authURL": "http://k/v3", "os-userID": "uid",
			"os-password": "pw", "os-projectID": "pid"}, AuthPassword},
		{"application credential by id", map[string]string{"os-authURL": "http://k/v3",
			"os-applicationCredentialID": "acid", "os-applicationCredentialSecret": "acs"}, AuthApplicationCredential},
		{"application credential by name", map[string]string{"os-authURL": "http://k/v3",
			"os-applicationCredentialName": "ac", "os-applicationCredentialSecret": "acs",
			"os-userName": "u", "os-userDomainName": "Default"}, AuthApplicationCredential},
		{"trust with trustee", map[string]string{"os-authURL": "http://k/v3", "os-trustID": "tr",
			"os-trusteeID": "tee", "os-trusteePassword": "tpw"}, AuthTrust},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromSecrets(tt.secrets)
			if err != nil {
				t.Fatal(err)
			}
			if c.Method() != tt.method {
				t.Errorf("method %v, want %v", c.Method(), tt.method)
			}
		})
	}
}

func TestFromSecretsNamesTheMissingOrWrongKey(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m map[string]string)
		want   string
	}{
		{"no auth URL", func(m map[string]string) { delete(m, "os-authURL") }, "missing os-authURL"},
		{"auth URL without scheme", func(m map[string]string) { m["os-authURL"] = "keystone:5000" }, "os-authURL must start with http"},
		{"no password", func(m map[string]string) { delete(m, "os-password") }, "missing os-password"},
		{"empty password counts as missing", func(m map[string]string) { m["os-password"] = " " }, "missing os-password"},
		{"no user", func(m map[string]string) { delete(m, "os-userName") }, "missing os-userName or os-userID"},
		{"no project", func(m map[string]string) {
			delete(m, "os-projectName")
			delete(m, "os-domainName")
			m["os-userDomainName"] = "Default"
		}, "missing os-projectID or os-projectName"},
		{"user name without any domain", func(m map[string]string) { delete(m, "os-domainName") }, "needed with os-userName"},
		{"bad TLSInsecure", func(m map[string]string) { m["os-TLSInsecure"] = "maybe" }, "os-TLSInsecure must be true or false"},
		{"bad endpoint type", func(m map[string]string) { m["os-endpointType"] = "private" }, "os-endpointType must be"},
		{"client cert without key", func(m map[string]string) { m["os-clientCertPath"] = "/c" }, "os-clientCertPath and os-clientKeyPath"},
		{"CA path and content", func(m map[string]string) { m["os-certAuthorityPath"] = "/ca"; m["os-certAuthority"] = testPEM }, "not both"},
		{"CA content not PEM", func(m map[string]string) { m["os-certAuthority"] = "pw-Sekrit-123" }, "os-certAuthority must hold PEM"},
		{"key in the wrong case", func(m map[string]string) { delete(m, "os-password"); m["os-Password"] = "x" }, "did you mean os-password?"},
		{"app credential without secret", func(m map[string]string) {
			m["os-applicationCredentialID"] = "id"
		}, "missing os-applicationCredentialSecret"},
		{"trust without trustee password", func(m map[string]string) {
			delete(m, "os-password")
			m["os-trustID"] = "t"
			m["os-trusteeID"] = "tee"
		}, "missing os-trusteePassword"},
		{"clouds.yaml file missing", func(m map[string]string) {
			m["os-useClouds"] = "true"
			m["os-cloud"] = "x"
			m["os-cloudsFile"] = "/nonexistent/clouds.yaml"
		}, "clouds-file /nonexistent/clouds.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := passwordSecrets()
			tt.mutate(m)
			_, err := FromSecrets(m)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			for k, v := range m {
				if len(v) >= 8 && strings.Contains(err.Error(), v) && !strings.Contains(tt.want, v) && !strings.HasPrefix(v, "/") {
					t.Errorf("error %q shows the value of %s", err, k)
				}
			}
		})
	}
}

func TestFromSecretsReadsCloudsYAML(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "clouds.yaml")
	yaml := "clouds:\n  rig:\n    auth:\n      auth_url: http://k/v3\n      application_credential_id: acid\n      application_credential_secret: acs\n    region_name: R9\n"
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := FromSecrets(map[string]string{"os-useClouds": "true", "os-cloudsFile": f, "os-cloud": "rig", "os-region": "R1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthURL != "http://k/v3" || c.Region != "R1" || c.ApplicationCredentialID != "acid" {
		t.Errorf("secrets should win over clouds.yaml and fill the rest: %v", c)
	}
}

func TestSecretsCloudNeverPrintsCredentials(t *testing.T) {
	m := passwordSecrets()
	m["os-applicationCredentialSecret"] = "acs-Sekrit-456"
	m["os-applicationCredentialID"] = "acid"
	m["os-trusteePassword"] = "tee-Sekrit-789"
	c, err := FromSecrets(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(verb, c)
		for _, s := range []string{"pw-Sekrit-123", "acs-Sekrit-456", "tee-Sekrit-789"} {
			if strings.Contains(out, s) {
				t.Fatalf("%s printed a credential: %s", verb, out)
			}
		}
	}
}

func TestSecretsDigestIsCanonical(t *testing.T) {
	a := passwordSecrets()
	b := passwordSecrets()
	b["cloud"] = "other keys do not count"
	b["userKey"] = "nor this"
	if SecretsDigest(a) != SecretsDigest(b) {
		t.Error("digest depends on non-os keys")
	}
	b["os-password"] = "rotated"
	if SecretsDigest(a) == SecretsDigest(b) {
		t.Error("digest ignores a changed password")
	}
	// Length prefixes keep key/value boundaries apart.
	x := map[string]string{"os-a": "bos-c"}
	y := map[string]string{"os-ab": "os-c"}
	if SecretsDigest(x) == SecretsDigest(y) {
		t.Error("digest is ambiguous across key/value boundaries")
	}
}

func TestHasSecretCredentials(t *testing.T) {
	for _, tt := range []struct {
		in   map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"cloud": "east"}, false},
		{map[string]string{"os-authURL": "http://k"}, true},
	} {
		if got := HasSecretCredentials(tt.in); got != tt.want {
			t.Errorf("HasSecretCredentials(%v) = %v", tt.in, got)
		}
	}
}

// FuzzFromSecrets: arbitrary secret maps never panic, and no error or
// printed Cloud contains a credential value.
func FuzzFromSecrets(f *testing.F) {
	f.Add("os-password", "pw-Sekrit-123", "os-authURL", "http://k/v3", "os-userName", "u")
	f.Add("os-applicationCredentialSecret", "acs-Sekrit-456", "os-applicationCredentialID", "id", "os-TLSInsecure", "yes")
	f.Add("os-trusteePassword", "tee-Sekrit-789", "os-trustID", "t", "os-certAuthority", testPEM)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		m := map[string]string{k1: v1, k2: v2, k3: v3}
		_, creds := SecretKeyNames()
		c, err := FromSecrets(m)
		out := ""
		if err != nil {
			out = err.Error()
		} else {
			out = fmt.Sprintf("%v %+v %#v", c, c, c)
		}
		for _, ck := range creds {
			s := strings.TrimSpace(m[ck])
			if len(s) < 8 {
				continue // short values occur by chance in other text
			}
			for k, v := range m {
				if k != ck && (strings.Contains(v, s) || strings.Contains(k, s)) {
					s = "" // also a public value or a key name
				}
			}
			if s != "" && strings.Contains(out, s) {
				t.Fatalf("credential %s printed: %q", ck, out)
			}
		}
	})
}
