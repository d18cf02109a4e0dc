// Package metadata reads the instance identity that the node plugin needs
// (Nova server UUID, availability zone, tagged devices) from the config
// drive or the metadata service. It makes no OpenStack API calls and needs
// no credentials.
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrBadMetadata means a metadata document was read but is not usable.
var ErrBadMetadata = errors.New("invalid instance metadata")

// Metadata is the part of meta_data.json the driver uses.
type Metadata struct {
	UUID             string   `json:"uuid"`
	Name             string   `json:"name"`
	AvailabilityZone string   `json:"availability_zone"`
	Devices          []Device `json:"devices,omitempty"`
}

// Device is one entry of the metadata "devices" list. Nova lists tagged
// devices there (and every volume on some hypervisors); Bus and Address
// locate the disk under /dev/disk/by-path.
type Device struct {
	Type    string `json:"type"`
	Bus     string `json:"bus"`
	Serial  string `json:"serial"`
	Address string `json:"address"`
}

// Parse decodes a meta_data.json document. The uuid is required; unknown
// fields are ignored, as later Nova versions add them freely.
func Parse(data []byte) (*Metadata, error) {
	var md Metadata
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMetadata, err)
	}
	md.UUID = strings.TrimSpace(md.UUID)
	if md.UUID == "" {
		return nil, fmt.Errorf("%w: no uuid", ErrBadMetadata)
	}
	if !isPrintableToken(md.UUID) {
		return nil, fmt.Errorf("%w: uuid %q has characters a server id cannot have", ErrBadMetadata, md.UUID)
	}
	return &md, nil
}

// DiskBySerial returns the disk entry whose serial is the volume id, or nil.
func (m *Metadata) DiskBySerial(volumeID string) *Device {
	for i := range m.Devices {
		d := &m.Devices[i]
		if d.Type == "disk" && d.Serial == volumeID {
			return d
		}
	}
	return nil
}

// isPrintableToken reports whether s is a plain identifier (no spaces,
// slashes or control characters), as Nova server UUIDs are. The id ends up
// in Kubernetes objects and in log lines, so garbage is refused early.
func isPrintableToken(s string) bool {
	if len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == 0x7f || r > 0x7e {
			return false
		}
	}
	return true
}

// maxLabelValueLength is the Kubernetes limit on a label value.
const maxLabelValueLength = 63

var notLabelChars = regexp.MustCompile(`[^-A-Za-z0-9_.]+`)

// SanitizeLabel turns an availability-zone name into a valid Kubernetes
// label value, as the reference plugin does: each run of characters outside
// [-A-Za-z0-9_.] becomes one '-'. The value is cut to 63 characters before
// the ends are trimmed to alphanumerics, so the cut never leaves a trailing
// '-' that the API server would reject.
func SanitizeLabel(s string) string {
	s = notLabelChars.ReplaceAllString(s, "-")
	if len(s) > maxLabelValueLength {
		s = s[:maxLabelValueLength]
	}
	return strings.Trim(s, "-_.")
}
