package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// cloudsYAML is the subset of os-client-config's clouds.yaml we read.
type cloudsYAML struct {
	Clouds map[string]cloudsEntry `json:"clouds"`
}

type cloudsEntry struct {
	Auth struct {
		AuthURL                     string `json:"auth_url"`
		Username                    string `json:"username"`
		UserID                      string `json:"user_id"`
		Password                    string `json:"password"`
		ProjectID                   string `json:"project_id"`
		ProjectName                 string `json:"project_name"`
		DomainID                    string `json:"domain_id"`
		DomainName                  string `json:"domain_name"`
		UserDomainID                string `json:"user_domain_id"`
		UserDomainName              string `json:"user_domain_name"`
		ProjectDomainID             string `json:"project_domain_id"`
		ProjectDomainName           string `json:"project_domain_name"`
		ApplicationCredentialID     string `json:"application_credential_id"`
		ApplicationCredentialName   string `json:"application_credential_name"`
		ApplicationCredentialSecret string `json:"application_credential_secret"`
		Token                       string `json:"token"`
		TrustID                     string `json:"trust_id"`
	} `json:"auth"`
	RegionName string `json:"region_name"`
	Interface  string `json:"interface"`
	CACert     string `json:"cacert"`
	Cert       string `json:"cert"`
	Key        string `json:"key"`
	Verify     *bool  `json:"verify"`
}

// cloudsFileCandidates is os-client-config's search order.
func cloudsFileCandidates() []string {
	var c []string
	if env := os.Getenv("OS_CLIENT_CONFIG_FILE"); env != "" {
		c = append(c, env)
	}
	c = append(c, "clouds.yaml")
	if home, err := os.UserHomeDir(); err == nil {
		c = append(c, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	return append(c, "/etc/openstack/clouds.yaml")
}

// ResolveCloudsYAML fills the empty fields of c from its clouds.yaml entry
// when use-clouds is set. Keys written in cloud.conf win.
func (c *Cloud) ResolveCloudsYAML() error {
	if !c.UseClouds {
		return nil
	}
	where := fmt.Sprintf("cloud config %s: %s", strings.Join(c.Sources, ", "), sectionName(c.Name))
	if c.CloudName == "" {
		return fmt.Errorf("%s: use-clouds is set but the cloud key (the clouds.yaml entry) is missing", where)
	}
	candidates := cloudsFileCandidates()
	if c.CloudsFile != "" {
		candidates = []string{c.CloudsFile}
	}
	var data []byte
	var file string
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err == nil {
			data, file = b, f
			break
		}
		if c.CloudsFile != "" {
			return fmt.Errorf("%s: clouds-file %s: %v", where, f, scrubPathErr(err))
		}
	}
	if file == "" {
		return fmt.Errorf("%s: use-clouds is set but no clouds.yaml was found (looked in %s)", where, strings.Join(candidates, ", "))
	}
	var doc cloudsYAML
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml errors quote line numbers, not values of other keys; keep
		// only the first line all the same.
		msg := err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("%s: clouds file %s is not valid YAML: %s", where, file, msg)
	}
	e, ok := doc.Clouds[c.CloudName]
	if !ok {
		return fmt.Errorf("%s: cloud %q not found in %s", where, c.CloudName, file)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	a := e.Auth
	fill(&c.AuthURL, a.AuthURL)
	fill(&c.Username, a.Username)
	fill(&c.UserID, a.UserID)
	fill(&c.Password, a.Password)
	fill(&c.TenantID, a.ProjectID)
	fill(&c.TenantName, a.ProjectName)
	fill(&c.DomainID, a.DomainID)
	fill(&c.DomainName, a.DomainName)
	fill(&c.UserDomainID, a.UserDomainID)
	fill(&c.UserDomainName, a.UserDomainName)
	fill(&c.TenantDomainID, a.ProjectDomainID)
	fill(&c.TenantDomainName, a.ProjectDomainName)
	fill(&c.ApplicationCredentialID, a.ApplicationCredentialID)
	fill(&c.ApplicationCredentialName, a.ApplicationCredentialName)
	fill(&c.ApplicationCredentialSecret, a.ApplicationCredentialSecret)
	fill(&c.Token, a.Token)
	fill(&c.TrustID, a.TrustID)
	fill(&c.Region, e.RegionName)
	fill(&c.EndpointType, e.Interface)
	fill(&c.CAFile, e.CACert)
	fill(&c.CertFile, e.Cert)
	fill(&c.KeyFile, e.Key)
	if e.Verify != nil && !*e.Verify && !c.TLSInsecure {
		c.TLSInsecure = true
	}
	c.Sources = append(c.Sources, file)
	return nil
}
