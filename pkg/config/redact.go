package config

import (
	"fmt"
	"strings"
)

const redacted = "<redacted>"

func mask(v string) string {
	if v == "" {
		return ""
	}
	return redacted
}

// String prints the section with every secret replaced by <redacted>.
func (c *Cloud) String() string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(sectionName(c.Name))
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	add("auth-url", c.AuthURL)
	add("username", c.Username)
	add("user-id", c.UserID)
	add("password", mask(c.Password))
	add("tenant-id", c.TenantID)
	add("tenant-name", c.TenantName)
	add("domain-id", c.DomainID)
	add("domain-name", c.DomainName)
	add("user-domain-id", c.UserDomainID)
	add("user-domain-name", c.UserDomainName)
	add("tenant-domain-id", c.TenantDomainID)
	add("tenant-domain-name", c.TenantDomainName)
	add("region", c.Region)
	add("os-endpoint-type", c.EndpointType)
	add("ca-file", c.CAFile)
	if c.CAData != "" {
		add("ca-data", fmt.Sprintf("<%d bytes of PEM>", len(c.CAData)))
	}
	add("cert-file", c.CertFile)
	add("key-file", c.KeyFile)
	if c.TLSInsecure {
		add("tls-insecure", "true")
	}
	add("application-credential-id", c.ApplicationCredentialID)
	add("application-credential-name", c.ApplicationCredentialName)
	add("application-credential-secret", mask(c.ApplicationCredentialSecret))
	add("trust-id", c.TrustID)
	add("trustee-id", c.TrusteeID)
	add("trustee-password", mask(c.TrusteePassword))
	add("token", mask(c.Token))
	if c.UseClouds {
		add("use-clouds", "true")
	}
	add("clouds-file", c.CloudsFile)
	add("cloud", c.CloudName)
	return b.String()
}

// GoString keeps %#v from printing the secret fields.
func (c *Cloud) GoString() string { return "config.Cloud{" + c.String() + "}" }

// Format makes every verb (%v, %+v, %s, %q, %#v) go through String, so that
// no formatting of a Cloud can reach the secret fields.
func (c *Cloud) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// Redacted returns the whole configuration with secrets replaced.
func (c *Config) Redacted() string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "files=%v", c.Files)
	for _, n := range c.Names() {
		b.WriteString("; ")
		b.WriteString(c.Clouds[n].String())
	}
	fmt.Fprintf(&b, "; [BlockStorage] node-volume-attach-limit=%d rescan-on-resize=%t ignore-volume-az=%t ignore-volume-microversion=%t",
		c.BlockStorage.NodeVolumeAttachLimit, c.BlockStorage.RescanOnResize, c.BlockStorage.IgnoreVolumeAZ, c.BlockStorage.IgnoreVolumeMicroversion)
	fmt.Fprintf(&b, "; [Metadata] search-order=%s request-timeout=%s", c.Metadata.SearchOrder, c.Metadata.RequestTimeout)
	return b.String()
}

// String is Redacted.
func (c *Config) String() string { return c.Redacted() }

// GoString is Redacted.
func (c *Config) GoString() string { return "config.Config{" + c.Redacted() + "}" }

// Format routes every verb through Redacted.
func (c *Config) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.Redacted()) }
