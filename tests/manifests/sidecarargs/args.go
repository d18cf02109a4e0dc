package sidecarargs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Arg is one parsed command-line flag.
type Arg struct {
	Name  string
	Value string
	// HasValue is false for a bare boolean flag (--name).
	HasValue bool
}

// String renders the flag the way our manifests write it.
func (a Arg) String() string {
	if !a.HasValue {
		return "--" + a.Name
	}
	return "--" + a.Name + "=" + a.Value
}

// Parse splits args into flags with the rules of Go's flag package and
// pflag (both accept --name=value and --name value; booleans only
// --name or --name=bool). Every flag must be in known; positional
// arguments are rejected because no sidecar takes any.
func Parse(args []string, known map[string]FlagKind) ([]Arg, error) {
	var out []Arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("argument %q is not a flag", a)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		}
		kind, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("unknown flag --%s", name)
		}
		switch kind {
		case Bool:
			if hasValue {
				if _, err := strconv.ParseBool(value); err != nil {
					return nil, fmt.Errorf("--%s wants a boolean, got %q", name, value)
				}
			}
		case Value:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("--%s needs a value", name)
				}
				i++
				value, hasValue = args[i], true
			}
		}
		out = append(out, Arg{Name: name, Value: value, HasValue: hasValue})
	}
	return out, nil
}

// Validate checks args against the sidecar's flags at its pinned
// version, including the names passed to --feature-gates.
func (s Sidecar) Validate(args []string) error {
	parsed, err := Parse(args, s.Flags)
	if err != nil {
		return fmt.Errorf("%s %s: %w", s.Container, s.Version, err)
	}
	seen := map[string]bool{}
	for _, a := range parsed {
		if seen[a.Name] && a.Name != "feature-gates" {
			return fmt.Errorf("%s: --%s given twice", s.Container, a.Name)
		}
		seen[a.Name] = true
		if a.Name != "feature-gates" {
			continue
		}
		for _, kv := range strings.Split(a.Value, ",") {
			gate, val, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%s: --feature-gates entry %q is not Gate=bool", s.Container, kv)
			}
			if !slices.Contains(s.FeatureGates, gate) {
				return fmt.Errorf("%s %s: unknown feature gate %q", s.Container, s.Version, gate)
			}
			if _, err := strconv.ParseBool(val); err != nil {
				return fmt.Errorf("%s: feature gate %s wants a boolean, got %q", s.Container, gate, val)
			}
		}
	}
	return nil
}

// Lookup returns the value of --name in args ("true" for a bare bool) and
// whether it is present.
func Lookup(args []string, name string) (string, bool) {
	for _, a := range args {
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			if !hasValue {
				return "true", true
			}
			return v, true
		}
	}
	return "", false
}

// Override returns args with each flag in set replaced by (or, when
// absent, appended as) --name=value, and every flag in drop removed. The
// e2e harness uses it to point a sidecar from the manifests at its own
// socket and kubeconfig while keeping every other argument as deployed.
func Override(args []string, set map[string]string, drop ...string) []string {
	out := make([]string, 0, len(args)+len(set))
	done := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(drop, name) {
			continue
		}
		if v, ok := set[name]; ok {
			out = append(out, "--"+name+"="+v)
			done[name] = true
			continue
		}
		out = append(out, a)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, "--"+k+"="+set[k])
	}
	return out
}

// ForHarness adapts a controller sidecar's deployed args to a process
// outside the cluster: the plugin socket and kubeconfig of the harness,
// no leader election (it needs the in-cluster namespace file), and no
// HTTP listener (the deployed ports may be taken on the test host).
// Every other argument stays exactly as in the manifests, so a flag the
// pinned binary rejects still fails the run.
func ForHarness(args []string, socket, kubeconfig string) []string {
	return Override(args, map[string]string{
		"csi-address":     socket,
		"kubeconfig":      kubeconfig,
		"leader-election": "false",
	}, "http-endpoint", "metrics-address")
}
