// Package config reads cloud.conf, the INI-style (gcfg) file the reference
// Cinder CSI plugin reads, with the same keys.
//
// Load merges several files in order, later values over earlier ones, and
// returns the unknown keys and sections as warnings rather than failing: an
// operator upgrading from the reference plugin may carry keys we ignore.
//
// The node side reads only [BlockStorage] and [Metadata] and never needs
// credentials. The controller additionally calls Config.ValidateClouds,
// which names the missing key and the file it was looked for in.
//
// No method of this package puts a secret (password, application credential
// secret, trustee password, token) into a string, an error or a log line:
// Cloud and Config implement String and GoString with secrets redacted.
package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/gcfg.v1"
	"gopkg.in/warnings.v0"
)

// Config is the merged content of one or more cloud.conf files.
type Config struct {
	// Clouds holds [Global] under "" and each [Global "name"] under name.
	Clouds       map[string]*Cloud
	BlockStorage BlockStorage
	Metadata     Metadata
	// Files are the files read, in merge order.
	Files []string
}

// Cloud is one [Global] or [Global "name"] section: how to reach and
// authenticate to one OpenStack cloud.
type Cloud struct {
	Name string // "" for [Global]

	AuthURL          string
	Username         string
	UserID           string
	Password         string // secret
	TenantID         string
	TenantName       string
	DomainID         string
	DomainName       string
	UserDomainID     string
	UserDomainName   string
	TenantDomainID   string
	TenantDomainName string

	Region       string
	EndpointType string // public (default), internal or admin

	CAFile      string
	CertFile    string
	KeyFile     string
	TLSInsecure bool
	// CAData is PEM content (the Manila secret key os-certAuthority), an
	// alternative to CAFile; not a secret, but printed by size only.
	CAData string

	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string // secret

	TrustID         string
	TrusteeID       string
	TrusteePassword string // secret

	Token string // secret; a pre-issued token, cannot be renewed

	UseClouds  bool
	CloudsFile string
	CloudName  string // the `cloud` key: the entry of clouds.yaml to read

	// Sources are the files that defined this section, for error messages.
	Sources []string
}

// BlockStorage is the [BlockStorage] section.
type BlockStorage struct {
	NodeVolumeAttachLimit    int
	RescanOnResize           bool
	IgnoreVolumeAZ           bool
	IgnoreVolumeMicroversion bool
}

// Metadata is the [Metadata] section (node side).
type Metadata struct {
	// SearchOrder is "configDrive,metadataService" by default.
	SearchOrder    string
	RequestTimeout time.Duration
}

// DefaultSearchOrder is the reference plugin's default metadata search order.
const DefaultSearchOrder = "configDrive,metadataService"

// rawFile is what gcfg fills. Every value is a string so that a malformed
// boolean or number becomes our own error naming the key and the file, and
// so that merging can tell "unset" from "set to false".
type rawFile struct {
	Global       map[string]*rawGlobal
	BlockStorage rawBlockStorage
	Metadata     rawMetadata
}

type rawGlobal struct {
	AuthURL          string `gcfg:"auth-url"`
	Username         string `gcfg:"username"`
	UserID           string `gcfg:"user-id"`
	Password         string `gcfg:"password"`
	TenantID         string `gcfg:"tenant-id"`
	TenantName       string `gcfg:"tenant-name"`
	DomainID         string `gcfg:"domain-id"`
	DomainName       string `gcfg:"domain-name"`
	UserDomainID     string `gcfg:"user-domain-id"`
	UserDomainName   string `gcfg:"user-domain-name"`
	TenantDomainID   string `gcfg:"tenant-domain-id"`
	TenantDomainName string `gcfg:"tenant-domain-name"`
	Region           string `gcfg:"region"`
	EndpointType     string `gcfg:"os-endpoint-type"`
	CAFile           string `gcfg:"ca-file"`
	CertFile         string `gcfg:"cert-file"`
	KeyFile          string `gcfg:"key-file"`
	TLSInsecure      string `gcfg:"tls-insecure"`
	AppCredID        string `gcfg:"application-credential-id"`
	AppCredName      string `gcfg:"application-credential-name"`
	AppCredSecret    string `gcfg:"application-credential-secret"`
	TrustID          string `gcfg:"trust-id"`
	TrusteeID        string `gcfg:"trustee-id"`
	TrusteePassword  string `gcfg:"trustee-password"`
	Token            string `gcfg:"token"`
	UseClouds        string `gcfg:"use-clouds"`
	CloudsFile       string `gcfg:"clouds-file"`
	Cloud            string `gcfg:"cloud"`
}

type rawBlockStorage struct {
	NodeVolumeAttachLimit    string `gcfg:"node-volume-attach-limit"`
	RescanOnResize           string `gcfg:"rescan-on-resize"`
	IgnoreVolumeAZ           string `gcfg:"ignore-volume-az"`
	IgnoreVolumeMicroversion string `gcfg:"ignore-volume-microversion"`
	// Read by older versions of the reference plugin; accepted silently.
	BSVersion    string `gcfg:"bs-version"`
	TrustDevPath string `gcfg:"trust-device-path"`
}

type rawMetadata struct {
	SearchOrder    string `gcfg:"search-order"`
	RequestTimeout string `gcfg:"request-timeout"`
}

// Load reads and merges the files in order. It returns the merged config,
// warnings (unknown keys and sections, one line each, naming the file), and
// an error for unreadable or malformed files. It does not require
// credentials: see ValidateClouds.
func Load(paths ...string) (*Config, []string, error) {
	var raws []namedRaw
	var warns []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, warns, fmt.Errorf("cloud config %s: %w", p, scrubPathErr(err))
		}
		raw, w, err := parseRaw(p, data)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		raws = append(raws, namedRaw{file: p, raw: raw})
	}
	cfg, err := build(raws)
	if err != nil {
		return nil, warns, err
	}
	cfg.Files = append([]string(nil), paths...)
	return cfg, warns, nil
}

// Parse reads a single cloud.conf held in memory; name is used in messages.
func Parse(name string, data []byte) (*Config, []string, error) {
	raw, warns, err := parseRaw(name, data)
	if err != nil {
		return nil, warns, err
	}
	cfg, err := build([]namedRaw{{file: name, raw: raw}})
	if err != nil {
		return nil, warns, err
	}
	cfg.Files = []string{name}
	return cfg, warns, nil
}

type namedRaw struct {
	file string
	raw  *rawFile
}

func scrubPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func parseRaw(name string, data []byte) (*rawFile, []string, error) {
	raw := &rawFile{}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	err := gcfg.ReadStringInto(raw, string(data))
	var warns []string
	if err != nil {
		list, isList := err.(warnings.List)
		switch {
		case isList:
			warns = describeWarnings(name, list.Warnings)
			if list.Fatal != nil {
				return nil, warns, fmt.Errorf("cloud config %s: %s", name, syntaxMessage(list.Fatal))
			}
		case gcfg.FatalOnly(err) == nil:
			warns = append(warns, fmt.Sprintf("cloud config %s: ignoring unknown %s", name, describeExtra(err)))
		default:
			return nil, warns, fmt.Errorf("cloud config %s: %s", name, syntaxMessage(err))
		}
	}
	return raw, warns, nil
}

// describeWarnings renders gcfg's unknown-data warnings once each: gcfg
// reads the file in two passes and reports every key of an unknown
// section, so a section-level warning replaces its keys' ones.
func describeWarnings(file string, ws []error) []string {
	seen := map[string]bool{}
	sections := map[string]bool{}
	var descs []string
	for _, w := range ws {
		d := strings.ReplaceAll(describeExtra(w), `, subsection ""`, "")
		if !strings.Contains(d, "variable") {
			sections[d] = true
		}
		if !seen[d] {
			seen[d] = true
			descs = append(descs, d)
		}
	}
	var out []string
	for _, d := range descs {
		if i := strings.Index(d, ", variable"); i >= 0 && sections[d[:i]] {
			continue
		}
		out = append(out, fmt.Sprintf("cloud config %s: ignoring unknown %s", file, d))
	}
	return out
}

// describeExtra turns gcfg's "can't store data at section ..." into
// `section "x", variable "y"`. gcfg never quotes the value here.
func describeExtra(err error) string {
	return strings.TrimPrefix(err.Error(), "can't store data at ")
}

// syntaxMessage keeps gcfg's position and reason but never a value: gcfg's
// scanner messages name the position and the expected token only. The
// message is cut at the first newline so that a multi-line value cannot be
// echoed whole.
func syntaxMessage(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return "syntax error: " + msg
}

func build(raws []namedRaw) (*Config, error) {
	cfg := &Config{Clouds: map[string]*Cloud{}}
	merged := map[string]*rawGlobal{}
	sources := map[string][]string{}
	var bs rawBlockStorage
	var md rawMetadata
	bsSrc := map[string]string{}
	mdSrc := map[string]string{}
	for _, nr := range raws {
		for name, g := range nr.raw.Global {
			if g == nil {
				continue
			}
			if merged[name] == nil {
				merged[name] = &rawGlobal{}
			}
			mergeStrings(merged[name], g)
			sources[name] = append(sources[name], nr.file)
		}
		mergeStringsSrc(&bs, &nr.raw.BlockStorage, bsSrc, nr.file)
		mergeStringsSrc(&md, &nr.raw.Metadata, mdSrc, nr.file)
	}
	for name, g := range merged {
		c, err := g.toCloud(name, sources[name])
		if err != nil {
			return nil, err
		}
		cfg.Clouds[name] = c
	}
	var err error
	if cfg.BlockStorage, err = bs.toBlockStorage(bsSrc); err != nil {
		return nil, err
	}
	if cfg.Metadata, err = md.toMetadata(mdSrc); err != nil {
		return nil, err
	}
	return cfg, nil
}

// mergeStrings copies every non-empty string field of src over dst.
func mergeStrings(dst, src any) {
	mergeStringsSrc(dst, src, nil, "")
}

func mergeStringsSrc(dst, src any, srcOf map[string]string, file string) {
	d := reflect.ValueOf(dst).Elem()
	s := reflect.ValueOf(src).Elem()
	for i := 0; i < d.NumField(); i++ {
		if d.Field(i).Kind() != reflect.String {
			continue
		}
		if v := strings.TrimSpace(s.Field(i).String()); v != "" {
			d.Field(i).SetString(v)
			if srcOf != nil {
				srcOf[d.Type().Field(i).Tag.Get("gcfg")] = file
			}
		}
	}
}

func sectionName(name string) string {
	if name == "" {
		return "[Global]"
	}
	return fmt.Sprintf("[Global %q]", name)
}

func parseBool(key, section, file, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		switch strings.ToLower(v) {
		case "yes", "on":
			return true, nil
		case "no", "off":
			return false, nil
		}
		return false, fmt.Errorf("cloud config %s: %s %s must be true or false", file, section, key)
	}
	return b, nil
}

func (g *rawGlobal) toCloud(name string, sources []string) (*Cloud, error) {
	file := strings.Join(sources, ", ")
	sec := sectionName(name)
	insecure, err := parseBool("tls-insecure", sec, file, g.TLSInsecure)
	if err != nil {
		return nil, err
	}
	useClouds, err := parseBool("use-clouds", sec, file, g.UseClouds)
	if err != nil {
		return nil, err
	}
	return &Cloud{
		Name: name, AuthURL: g.AuthURL, Username: g.Username, UserID: g.UserID,
		Password: g.Password, TenantID: g.TenantID, TenantName: g.TenantName,
		DomainID: g.DomainID, DomainName: g.DomainName,
		UserDomainID: g.UserDomainID, UserDomainName: g.UserDomainName,
		TenantDomainID: g.TenantDomainID, TenantDomainName: g.TenantDomainName,
		Region: g.Region, EndpointType: g.EndpointType,
		CAFile: g.CAFile, CertFile: g.CertFile, KeyFile: g.KeyFile, TLSInsecure: insecure,
		ApplicationCredentialID: g.AppCredID, ApplicationCredentialName: g.AppCredName,
		ApplicationCredentialSecret: g.AppCredSecret,
		TrustID:                     g.TrustID, TrusteeID: g.TrusteeID, TrusteePassword: g.TrusteePassword,
		Token:     g.Token,
		UseClouds: useClouds, CloudsFile: g.CloudsFile, CloudName: g.Cloud,
		Sources: append([]string(nil), sources...),
	}, nil
}

// MaxVolumeAttachLimit is the largest node-volume-attach-limit accepted,
// as in the reference plugin (a virtio-blk guest has at most 256 devices).
const MaxVolumeAttachLimit = 256

func (r rawBlockStorage) toBlockStorage(src map[string]string) (BlockStorage, error) {
	var bs BlockStorage
	var err error
	if v := r.NodeVolumeAttachLimit; v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 || n > MaxVolumeAttachLimit {
			return bs, fmt.Errorf("cloud config %s: [BlockStorage] node-volume-attach-limit must be a whole number from 0 to %d",
				src["node-volume-attach-limit"], MaxVolumeAttachLimit)
		}
		bs.NodeVolumeAttachLimit = n
	}
	for _, b := range []struct {
		key string
		val string
		dst *bool
	}{
		{"rescan-on-resize", r.RescanOnResize, &bs.RescanOnResize},
		{"ignore-volume-az", r.IgnoreVolumeAZ, &bs.IgnoreVolumeAZ},
		{"ignore-volume-microversion", r.IgnoreVolumeMicroversion, &bs.IgnoreVolumeMicroversion},
	} {
		if *b.dst, err = parseBool(b.key, "[BlockStorage]", src[b.key], b.val); err != nil {
			return bs, err
		}
	}
	return bs, nil
}

func (r rawMetadata) toMetadata(src map[string]string) (Metadata, error) {
	md := Metadata{SearchOrder: DefaultSearchOrder}
	if r.SearchOrder != "" {
		parts := strings.Split(r.SearchOrder, ",")
		if len(parts) > 2 {
			return md, fmt.Errorf("cloud config %s: [Metadata] search-order takes at most two entries: configDrive, metadataService", src["search-order"])
		}
		for _, p := range parts {
			switch strings.TrimSpace(p) {
			case "configDrive", "metadataService":
			default:
				return md, fmt.Errorf("cloud config %s: [Metadata] search-order entries must be configDrive or metadataService", src["search-order"])
			}
		}
		md.SearchOrder = strings.ReplaceAll(r.SearchOrder, " ", "")
	}
	if v := r.RequestTimeout; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			n, nerr := strconv.Atoi(v)
			if nerr != nil {
				return md, fmt.Errorf("cloud config %s: [Metadata] request-timeout must be a duration such as 5s", src["request-timeout"])
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 {
			return md, fmt.Errorf("cloud config %s: [Metadata] request-timeout must not be negative", src["request-timeout"])
		}
		md.RequestTimeout = d
	}
	return md, nil
}

// Names returns the configured cloud names, sorted, "" first.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Clouds))
	for n := range c.Clouds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
