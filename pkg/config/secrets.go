package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Credentials in CSI secrets, as the reference Manila plugin reads them:
// a Kubernetes Secret with os-authURL, os-userName, os-password and so on,
// referenced by the StorageClass's csi.storage.k8s.io/*-secret-* keys.
// FromSecrets turns them into a Cloud, so that the cloud layer treats a
// request's secrets exactly like a cloud.conf section.

// SecretsCloudName is the Name of a Cloud built from CSI secrets.
const SecretsCloudName = "(secrets)"

// secretKey maps one os-* key to the Cloud field it fills.
type secretKey struct {
	name   string
	secret bool // a credential: never printed, hashed only
	set    func(c *Cloud, v string)
}

// secretKeys are the reference plugin's keys (its AuthOpts "name" tags),
// case-sensitive as there.
var secretKeys = []secretKey{
	{name: "os-authURL", set: func(c *Cloud, v string) { c.AuthURL = v }},
	{name: "os-region", set: func(c *Cloud, v string) { c.Region = v }},
	{name: "os-endpointType", set: func(c *Cloud, v string) { c.EndpointType = v }},
	{name: "os-userName", set: func(c *Cloud, v string) { c.Username = v }},
	{name: "os-userID", set: func(c *Cloud, v string) { c.UserID = v }},
	{name: "os-password", secret: true, set: func(c *Cloud, v string) { c.Password = v }},
	{name: "os-projectName", set: func(c *Cloud, v string) { c.TenantName = v }},
	{name: "os-projectID", set: func(c *Cloud, v string) { c.TenantID = v }},
	{name: "os-domainName", set: func(c *Cloud, v string) { c.DomainName = v }},
	{name: "os-domainID", set: func(c *Cloud, v string) { c.DomainID = v }},
	{name: "os-userDomainName", set: func(c *Cloud, v string) { c.UserDomainName = v }},
	{name: "os-userDomainID", set: func(c *Cloud, v string) { c.UserDomainID = v }},
	{name: "os-projectDomainName", set: func(c *Cloud, v string) { c.TenantDomainName = v }},
	{name: "os-projectDomainID", set: func(c *Cloud, v string) { c.TenantDomainID = v }},
	{name: "os-applicationCredentialID", set: func(c *Cloud, v string) { c.ApplicationCredentialID = v }},
	{name: "os-applicationCredentialName", set: func(c *Cloud, v string) { c.ApplicationCredentialName = v }},
	{name: "os-applicationCredentialSecret", secret: true, set: func(c *Cloud, v string) { c.ApplicationCredentialSecret = v }},
	{name: "os-trustID", set: func(c *Cloud, v string) { c.TrustID = v }},
	{name: "os-trusteeID", set: func(c *Cloud, v string) { c.TrusteeID = v }},
	{name: "os-trusteePassword", secret: true, set: func(c *Cloud, v string) { c.TrusteePassword = v }},
	{name: "os-certAuthorityPath", set: func(c *Cloud, v string) { c.CAFile = v }},
	{name: "os-certAuthority", set: func(c *Cloud, v string) { c.CAData = v }},
	{name: "os-clientCertPath", set: func(c *Cloud, v string) { c.CertFile = v }},
	{name: "os-clientKeyPath", set: func(c *Cloud, v string) { c.KeyFile = v }},
	// os-TLSInsecure, os-useClouds are booleans: see FromSecrets.
	{name: "os-TLSInsecure"},
	{name: "os-useClouds"},
	{name: "os-cloudsFile", set: func(c *Cloud, v string) { c.CloudsFile = v }},
	{name: "os-cloud", set: func(c *Cloud, v string) { c.CloudName = v }},
}

// HasSecretCredentials reports whether CSI secrets carry os-* credential
// keys, which select FromSecrets over a cloud.conf section.
func HasSecretCredentials(secrets map[string]string) bool {
	for k := range secrets {
		if strings.HasPrefix(k, "os-") {
			return true
		}
	}
	return false
}

// FromSecrets builds a Cloud from the reference plugin's os-* secret keys
// and validates it. Every error names the key that is missing, empty or
// malformed, never a value. Keys other than os-* (the `cloud` selector,
// keys of other consumers of the same Secret) are ignored; an os-* key we
// do not know is ignored as the reference does, unless it differs from a
// known key only in case, which is named as the likely typo.
func FromSecrets(secrets map[string]string) (*Cloud, error) {
	c := &Cloud{Name: SecretsCloudName, Sources: []string{"CSI secrets"}}
	known := map[string]bool{}
	for _, k := range secretKeys {
		known[k.name] = true
		v := strings.TrimSpace(secrets[k.name])
		if v == "" || k.set == nil {
			continue
		}
		k.set(c, v)
	}
	var errs []error
	for _, b := range []struct {
		key string
		dst *bool
	}{{"os-TLSInsecure", &c.TLSInsecure}, {"os-useClouds", &c.UseClouds}} {
		v := strings.TrimSpace(secrets[b.key])
		if v == "" {
			continue
		}
		val, err := parseBool(b.key, "", "", v)
		if err != nil {
			errs = append(errs, fmt.Errorf("CSI secrets: %s must be true or false", b.key))
			continue
		}
		*b.dst = val
	}
	errs = append(errs, typoErrors(secrets, known)...)
	if len(errs) == 0 {
		if err := c.ResolveCloudsYAML(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.validateSecrets()...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// typoErrors names the os-* keys that match a known key only when case is
// ignored (os-username for os-userName): silently ignoring them would
// report a missing key the operator believes is set.
func typoErrors(secrets map[string]string, known map[string]bool) []error {
	lower := map[string]string{}
	for k := range known {
		lower[strings.ToLower(k)] = k
	}
	var keys []string
	for k := range secrets {
		if strings.HasPrefix(k, "os-") && !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if want, ok := lower[strings.ToLower(k)]; ok && secrets[want] == "" {
			errs = append(errs, fmt.Errorf("CSI secrets: unknown key %s; keys are case-sensitive, did you mean %s?", k, want))
		}
	}
	return errs
}

// validateSecrets is Validate in the secret keys' names, plus the CA
// checks only secrets need (they can carry the CA inline).
func (c *Cloud) validateSecrets() []error {
	errs := c.validate(keyNames{
		where:              "CSI secrets",
		authURL:            "os-authURL",
		endpointType:       "os-endpointType",
		certPair:           "os-clientCertPath and os-clientKeyPath",
		appCredSecret:      "os-applicationCredentialSecret",
		appCredIDOrName:    "os-applicationCredentialID or os-applicationCredentialName",
		userForAppCredName: "os-userName or os-userID (needed with os-applicationCredentialName)",
		trustee:            "os-trusteeID (the user the trust delegates to)",
		trusteePassword:    "os-trusteePassword",
		user:               "os-userName or os-userID",
		password:           "os-password (or os-applicationCredentialID and os-applicationCredentialSecret, or os-trustID)",
		project:            "os-projectID or os-projectName (the project shares are created in)",
		projectDomain:      "os-projectDomainName, os-projectDomainID, os-domainName or os-domainID (needed with os-projectName)",
		userDomain:         "os-userDomainName, os-userDomainID, os-domainName or os-domainID (needed with os-userName)",
		tokenNeedsPassword: true,
	})
	if c.CAFile != "" && c.CAData != "" {
		errs = append(errs, errors.New("CSI secrets: set os-certAuthorityPath or os-certAuthority, not both"))
	}
	if c.CAData != "" && !strings.Contains(c.CAData, "-----BEGIN CERTIFICATE-----") {
		errs = append(errs, errors.New("CSI secrets: os-certAuthority must hold PEM certificates (-----BEGIN CERTIFICATE-----)"))
	}
	return errs
}

// SecretsDigest is the SHA-256 of the os-* keys and values of secrets in
// a canonical order, for caching the cloud they build without keeping
// their text. Two maps with the same os-* pairs have the same digest
// whatever else they hold.
func SecretsDigest(secrets map[string]string) [32]byte {
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		if strings.HasPrefix(k, "os-") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		// Length prefixes keep "a"+"bc" and "ab"+"c" apart.
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(secrets[k]), secrets[k])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// SecretKeyNames returns the os-* keys FromSecrets reads, and which of
// them are credentials.
func SecretKeyNames() (all, credentials []string) {
	for _, k := range secretKeys {
		all = append(all, k.name)
		if k.secret {
			credentials = append(credentials, k.name)
		}
	}
	return all, credentials
}
