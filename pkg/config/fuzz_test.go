package config

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the cloud.conf parser. It must never
// panic, and whatever it parses must never print a secret. The seed corpus
// is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullConf))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse("fuzz.conf", data)
		if err != nil {
			return
		}
		_ = cfg.ValidateClouds()
		out := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Redacted())
		for _, c := range cfg.Clouds {
			out += fmt.Sprintf(" %v %+v %#v", c, c, c)
		}
		for _, c := range cfg.Clouds {
			for _, s := range []string{c.Password, c.ApplicationCredentialSecret, c.TrusteePassword, c.Token} {
				// Short secrets occur by chance in other text; a secret
				// that is also a public value is printed as that value.
				if len(s) < 8 || visibleElsewhere(cfg, s) {
					continue
				}
				if strings.Contains(out, s) {
					t.Fatalf("secret %q printed", s)
				}
			}
		}
	})
}

// visibleElsewhere reports whether s occurs in a non-secret value, a
// section name or the fixed text of the rendering.
func visibleElsewhere(cfg *Config, s string) bool {
	fixed := "<redacted> fuzz.conf files= [Global] [BlockStorage] [Metadata] node-volume-attach-limit rescan-on-resize " +
		"ignore-volume-az ignore-volume-microversion search-order request-timeout configDrive,metadataService " +
		"config.Config{ config.Cloud{ auth-url username user-id password tenant-id tenant-name domain-id domain-name " +
		"user-domain-id user-domain-name tenant-domain-id tenant-domain-name region os-endpoint-type ca-file cert-file " +
		"key-file tls-insecure application-credential-id application-credential-name application-credential-secret " +
		"trust-id trustee-id trustee-password token use-clouds clouds-file cloud true false"
	if strings.Contains(fixed, s) {
		return true
	}
	for _, c := range cfg.Clouds {
		for _, v := range []string{c.Name, fmt.Sprintf("%q", c.Name), c.AuthURL, c.Username, c.UserID, c.TenantID,
			c.TenantName, c.DomainID, c.DomainName, c.UserDomainID, c.UserDomainName, c.TenantDomainID,
			c.TenantDomainName, c.Region, c.EndpointType, c.CAFile, c.CertFile, c.KeyFile, c.ApplicationCredentialID,
			c.ApplicationCredentialName, c.TrustID, c.TrusteeID, c.CloudsFile, c.CloudName} {
			if v != "" && (strings.Contains(v, s) || strings.Contains(s, v)) {
				return true
			}
		}
	}
	return strings.Contains(cfg.Metadata.SearchOrder, s)
}
