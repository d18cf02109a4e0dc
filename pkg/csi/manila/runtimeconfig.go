package manila

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
)

// RuntimeConfig is the reference plugin's --runtime-config-file, a JSON
// document: {"nfs": {"matchExportLocationAddress": "10.0.0.0/24"}}.
type RuntimeConfig struct {
	NFS *NFSRuntimeConfig `json:"nfs,omitempty"`
}

// NFSRuntimeConfig picks the NFS export location by address.
type NFSRuntimeConfig struct {
	// MatchExportLocationAddress is a CIDR; an export location whose
	// address lies in it wins over "preferred".
	MatchExportLocationAddress string `json:"matchExportLocationAddress,omitempty"`

	match *net.IPNet
}

// LoadRuntimeConfig reads and validates the file; "" is an empty config.
func LoadRuntimeConfig(path string) (RuntimeConfig, error) {
	if path == "" {
		return RuntimeConfig{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return RuntimeConfig{}, fmt.Errorf("runtime config: %w", err)
	}
	return ParseRuntimeConfig(data)
}

// ParseRuntimeConfig parses the file's content; unknown fields are errors.
func ParseRuntimeConfig(data []byte) (RuntimeConfig, error) {
	var rc RuntimeConfig
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return RuntimeConfig{}, fmt.Errorf("runtime config: %w", err)
	}
	if rc.NFS != nil && rc.NFS.MatchExportLocationAddress != "" {
		_, n, err := net.ParseCIDR(rc.NFS.MatchExportLocationAddress)
		if err != nil {
			return RuntimeConfig{}, fmt.Errorf("runtime config: nfs.matchExportLocationAddress %q is not a CIDR", rc.NFS.MatchExportLocationAddress)
		}
		rc.NFS.match = n
	}
	return rc, nil
}

func (rc RuntimeConfig) nfsMatch() *net.IPNet {
	if rc.NFS == nil {
		return nil
	}
	return rc.NFS.match
}
