// Package cliflag holds the flag types the plugin binaries share: the
// repeatable string and key=value flags, and the Kubernetes client flags
// (--kubeconfig, --master, --kube-api-qps, --kube-api-burst) with the
// reference plugins' defaults.
package cliflag

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// StringList is a repeatable string flag that also accepts comma lists.
type StringList []string

func (s *StringList) String() string { return strings.Join(*s, ",") }

// Set appends each non-empty comma-separated part.
func (s *StringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

// KeyValueMap is a repeatable key=value flag.
type KeyValueMap map[string]string

func (m *KeyValueMap) String() string {
	keys := make([]string, 0, len(*m))
	for k := range *m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+(*m)[k])
	}
	return strings.Join(parts, ",")
}

// Set adds each comma-separated key=value pair.
func (m *KeyValueMap) Set(v string) error {
	if *m == nil {
		*m = map[string]string{}
	}
	for _, part := range strings.Split(v, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || key == "" {
			return fmt.Errorf("%q is not key=value", part)
		}
		(*m)[key] = value
	}
	return nil
}

// Kube are the Kubernetes client flags.
type Kube struct {
	Kubeconfig string
	Master     string
	QPS        float64
	Burst      int
}

// Register adds the flags to fs with the reference plugins' defaults (5
// requests per second, burst 10).
func (k *Kube) Register(fs *flag.FlagSet, usage string) {
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "kubeconfig for "+usage+" (default: in-cluster config)")
	fs.StringVar(&k.Master, "master", "", "Kubernetes API server address, overriding the kubeconfig's")
	fs.Float64Var(&k.QPS, "kube-api-qps", 5, "requests per second to the Kubernetes API server")
	fs.IntVar(&k.Burst, "kube-api-burst", 10, "requests allowed at once above --kube-api-qps")
}

// Validate checks the limits.
func (k *Kube) Validate() error {
	if k.QPS <= 0 || k.Burst <= 0 {
		return fmt.Errorf("--kube-api-qps (%g) and --kube-api-burst (%d) must be positive", k.QPS, k.Burst)
	}
	return nil
}
