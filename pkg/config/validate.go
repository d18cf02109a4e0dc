package config

import (
	"errors"
	"fmt"
	"strings"
)

// AuthMethod is how a cloud section authenticates to Keystone.
type AuthMethod int

// The auth methods, in the order Method checks them last to first.
const (
	AuthPassword              AuthMethod = iota + 1 // username or user id and password
	AuthApplicationCredential                       // application credential id or name, and secret
	AuthTrust                                       // a trust id, as the trustee
	AuthToken                                       // a pre-issued token
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
	return c.validate(fileKeys(fmt.Sprintf("cloud config %s: %s", strings.Join(c.Sources, ", "), sectionName(c.Name))))
}

// keyNames names each key a validation message mentions, in the spelling
// of where the section came from (cloud.conf keys or CSI secret keys), so
// one set of rules serves both.
type keyNames struct {
	where string // message prefix: the files and section, or "CSI secrets"

	authURL, endpointType, certPair string

	appCredSecret, appCredIDOrName, userForAppCredName string
	trustee, trusteePassword                           string
	user, password, project, projectDomain, userDomain string

	// tokenNeedsPassword keeps the password checks for a token section:
	// CSI secrets have no token key, so a token there can only come from
	// a clouds.yaml entry, and secret validation requires a password
	// beside it.
	tokenNeedsPassword bool
}

// fileKeys is keyNames in cloud.conf's spelling.
func fileKeys(where string) keyNames {
	return keyNames{
		where:              where,
		authURL:            "auth-url",
		endpointType:       "os-endpoint-type",
		certPair:           "cert-file and key-file",
		appCredSecret:      "application-credential-secret",
		appCredIDOrName:    "application-credential-id or application-credential-name",
		userForAppCredName: "username or user-id (needed with application-credential-name)",
		trustee:            "trustee-id (the user the trust delegates to)",
		trusteePassword:    "trustee-password",
		user:               "username or user-id",
		password:           "password (or application-credential-id and application-credential-secret)",
		project:            "tenant-id or tenant-name (the project volumes are created in)",
		projectDomain:      "tenant-domain-name or tenant-domain-id (needed with tenant-name)",
		userDomain:         "user-domain-name or user-domain-id (needed with username)",
	}
}

// validation collects the errors of one section's checks.
type validation struct {
	c    *Cloud
	n    keyNames
	errs []error
}

func (v *validation) missing(what string) {
	v.errs = append(v.errs, fmt.Errorf("%s: missing %s", v.n.where, what))
}

func (v *validation) invalid(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: "+format, append([]any{v.n.where}, args...)...))
}

// validate runs the checks shared by cloud.conf sections and CSI secrets:
// the auth URL, the keys the auth method needs, the endpoint type and the
// client certificate pair.
func (c *Cloud) validate(n keyNames) []error {
	v := &validation{c: c, n: n}
	if c.AuthURL == "" {
		v.missing(n.authURL)
	} else if !strings.HasPrefix(c.AuthURL, "http://") && !strings.HasPrefix(c.AuthURL, "https://") {
		v.invalid("%s must start with http:// or https://", n.authURL)
	}
	switch c.Method() {
	case AuthApplicationCredential:
		v.applicationCredential()
	case AuthTrust:
		v.trust()
	case AuthToken:
		if n.tokenNeedsPassword {
			v.password()
		}
	case AuthPassword:
		v.password()
	}
	switch strings.ToLower(c.EndpointType) {
	case "", "public", "publicurl", "internal", "internalurl", "admin", "adminurl":
	default:
		v.invalid("%s must be public, internal or admin", n.endpointType)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		v.invalid("%s must be set together", n.certPair)
	}
	return v.errs
}

// userDomain asks for a user domain when the user is given by name.
func (v *validation) userDomain() {
	c := v.c
	if c.Username != "" && c.UserID == "" &&
		c.UserDomainID == "" && c.UserDomainName == "" && c.DomainID == "" && c.DomainName == "" {
		v.missing(v.n.userDomain)
	}
}

func (v *validation) applicationCredential() {
	c := v.c
	if c.ApplicationCredentialSecret == "" {
		v.missing(v.n.appCredSecret)
	}
	if c.ApplicationCredentialID != "" {
		return
	}
	switch {
	case c.ApplicationCredentialName == "":
		v.missing(v.n.appCredIDOrName)
	case c.Username == "" && c.UserID == "":
		v.missing(v.n.userForAppCredName)
	default:
		v.userDomain()
	}
}

func (v *validation) trust() {
	c := v.c
	if c.TrusteeID == "" && c.UserID == "" && c.Username == "" {
		v.missing(v.n.trustee)
	}
	if c.TrusteePassword == "" && c.Password == "" {
		v.missing(v.n.trusteePassword)
	}
	if c.TrusteeID == "" {
		v.userDomain()
	}
}

func (v *validation) password() {
	c := v.c
	if c.Username == "" && c.UserID == "" {
		v.missing(v.n.user)
	}
	if c.Password == "" {
		v.missing(v.n.password)
	}
	v.userDomain()
	if c.TenantID == "" && c.TenantName == "" && c.DomainID == "" && c.DomainName == "" {
		v.missing(v.n.project)
	}
	if c.TenantName != "" && c.TenantID == "" && c.TenantDomainID == "" && c.TenantDomainName == "" &&
		c.DomainID == "" && c.DomainName == "" && c.UserDomainID == "" && c.UserDomainName == "" {
		v.missing(v.n.projectDomain)
	}
}
