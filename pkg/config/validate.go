package config

import (
	"errors"
	"fmt"
	"strings"
)

// AuthMethod is how a cloud section authenticates to Keystone.
type AuthMethod int

const (
	AuthPassword AuthMethod = iota + 1
	AuthApplicationCredential
	AuthTrust
	AuthToken
)

func (m AuthMethod) String() string {
	switch m {
	case AuthPassword:
		return "password"
	case AuthApplicationCredential:
		return "application-credential"
	case AuthTrust:
		return "trust"
	case AuthToken:
		return "token"
	}
	return "none"
}

// Method reports the auth method the section's keys select, by precedence:
// application credential, trust, token, password.
func (c *Cloud) Method() AuthMethod {
	switch {
	case c.ApplicationCredentialID != "" || c.ApplicationCredentialName != "" || c.ApplicationCredentialSecret != "":
		return AuthApplicationCredential
	case c.TrustID != "":
		return AuthTrust
	case c.Token != "" && c.Password == "":
		return AuthToken
	default:
		return AuthPassword
	}
}

// ValidateClouds checks that the named clouds (all when names is empty)
// have what the controller needs to authenticate, resolving clouds.yaml
// first. Each problem names the key, the section and the file.
func (c *Config) ValidateClouds(names ...string) error {
	if len(names) == 0 {
		names = c.Names()
		if len(names) == 0 {
			return fmt.Errorf("cloud config %s: no [Global] section", strings.Join(c.Files, ", "))
		}
	}
	var errs []error
	for _, n := range names {
		cl, ok := c.Clouds[n]
		if !ok {
			errs = append(errs, fmt.Errorf("cloud config %s: no %s section", strings.Join(c.Files, ", "), sectionName(n)))
			continue
		}
		if err := cl.ResolveCloudsYAML(); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, cl.Validate()...)
	}
	return errors.Join(errs...)
}

// Validate returns one error per missing or inconsistent key.
func (c *Cloud) Validate() []error {
	where := fmt.Sprintf("cloud config %s: %s", strings.Join(c.Sources, ", "), sectionName(c.Name))
	var errs []error
	missing := func(what string) {
		errs = append(errs, fmt.Errorf("%s: missing %s", where, what))
	}
	if c.AuthURL == "" {
		missing("auth-url")
	} else if !strings.HasPrefix(c.AuthURL, "http://") && !strings.HasPrefix(c.AuthURL, "https://") {
		errs = append(errs, fmt.Errorf("%s: auth-url must start with http:// or https://", where))
	}
	userNamed := c.Username != "" && c.UserID == ""
	needUserDomain := func() {
		if userNamed && c.UserDomainID == "" && c.UserDomainName == "" && c.DomainID == "" && c.DomainName == "" {
			missing("user-domain-name or user-domain-id (needed with username)")
		}
	}
	switch c.Method() {
	case AuthApplicationCredential:
		if c.ApplicationCredentialSecret == "" {
			missing("application-credential-secret")
		}
		if c.ApplicationCredentialID == "" {
			if c.ApplicationCredentialName == "" {
				missing("application-credential-id or application-credential-name")
			} else if c.Username == "" && c.UserID == "" {
				missing("username or user-id (needed with application-credential-name)")
			} else {
				needUserDomain()
			}
		}
	case AuthTrust:
		if c.TrusteeID == "" && c.UserID == "" && c.Username == "" {
			missing("trustee-id (the user the trust delegates to)")
		}
		if c.TrusteePassword == "" && c.Password == "" {
			missing("trustee-password")
		}
		if c.TrusteeID == "" {
			needUserDomain()
		}
	case AuthToken:
	case AuthPassword:
		if c.Username == "" && c.UserID == "" {
			missing("username or user-id")
		}
		if c.Password == "" {
			missing("password (or application-credential-id and application-credential-secret)")
		}
		needUserDomain()
		if c.TenantID == "" && c.TenantName == "" && c.DomainID == "" && c.DomainName == "" {
			missing("tenant-id or tenant-name (the project volumes are created in)")
		}
		if c.TenantName != "" && c.TenantID == "" && c.TenantDomainID == "" && c.TenantDomainName == "" &&
			c.DomainID == "" && c.DomainName == "" && c.UserDomainID == "" && c.UserDomainName == "" {
			missing("tenant-domain-name or tenant-domain-id (needed with tenant-name)")
		}
	}
	switch strings.ToLower(c.EndpointType) {
	case "", "public", "publicurl", "internal", "internalurl", "admin", "adminurl":
	default:
		errs = append(errs, fmt.Errorf("%s: os-endpoint-type must be public, internal or admin", where))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: cert-file and key-file must be set together", where))
	}
	return errs
}
