package sidecarargs

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// patchOp is one RFC 6902 operation of a kustomize `patches` entry. The
// loader knows test, add and replace (what our overlays use); any other
// op fails loudly rather than being ignored.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// kustomizePatch is one `patches` entry: a JSON patch for the objects of a
// kind and name.
type kustomizePatch struct {
	Target struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"target"`
	Patch string `json:"patch"`
}

func (p kustomizePatch) matches(o Object) bool {
	return (p.Target.Kind == "" || p.Target.Kind == o.Kind) && (p.Target.Name == "" || p.Target.Name == o.Name)
}

// apply runs the patch's operations on doc, in order.
func (p kustomizePatch) apply(doc map[string]any) error {
	var ops []patchOp
	if err := yaml.UnmarshalStrict([]byte(p.Patch), &ops); err != nil {
		return fmt.Errorf("patch for %s/%s: %w", p.Target.Kind, p.Target.Name, err)
	}
	for _, op := range ops {
		if err := applyOp(doc, op); err != nil {
			return fmt.Errorf("patch for %s/%s: %s %s: %w", p.Target.Kind, p.Target.Name, op.Op, op.Path, err)
		}
	}
	return nil
}

func applyOp(doc map[string]any, op patchOp) error {
	if !strings.HasPrefix(op.Path, "/") {
		return fmt.Errorf("path must start with /")
	}
	keys := strings.Split(op.Path[1:], "/")
	var parent any = doc
	for _, k := range keys[:len(keys)-1] {
		next, err := child(parent, k)
		if err != nil {
			return err
		}
		parent = next
	}
	last := keys[len(keys)-1]
	switch op.Op {
	case "test":
		got, err := child(parent, last)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, op.Value) {
			return fmt.Errorf("found %v, want %v", got, op.Value)
		}
		return nil
	case "add", "replace":
		return set(doc, keys, parent, last, op)
	}
	return fmt.Errorf("op %q is not supported by this loader (test, add, replace)", op.Op)
}

// set writes op.Value at parent[last]; appending to or inserting into a
// list rewrites the list in its own parent (found again from doc).
func set(doc map[string]any, keys []string, parent any, last string, op patchOp) error {
	switch p := parent.(type) {
	case map[string]any:
		if _, ok := p[last]; !ok && op.Op == "replace" {
			return fmt.Errorf("no %q to replace", last)
		}
		p[last] = op.Value
		return nil
	case []any:
		i := len(p)
		if last != "-" {
			var err error
			if i, err = index(p, last, op.Op == "add"); err != nil {
				return err
			}
		}
		if op.Op == "replace" {
			if i == len(p) {
				return fmt.Errorf("no item %q to replace", last)
			}
			p[i] = op.Value
			return nil
		}
		list := append(append(append([]any{}, p[:i]...), op.Value), p[i:]...)
		grand := any(doc)
		for _, k := range keys[:len(keys)-2] {
			grand, _ = child(grand, k)
		}
		return setChild(grand, keys[len(keys)-2], list)
	}
	return fmt.Errorf("cannot set %q in a %T", last, parent)
}

func child(node any, key string) (any, error) {
	switch n := node.(type) {
	case map[string]any:
		v, ok := n[key]
		if !ok {
			return nil, fmt.Errorf("no key %q", key)
		}
		return v, nil
	case []any:
		i, err := index(n, key, false)
		if err != nil {
			return nil, err
		}
		return n[i], nil
	}
	return nil, fmt.Errorf("cannot descend into a %T at %q", node, key)
}

func setChild(node any, key string, v any) error {
	switch n := node.(type) {
	case map[string]any:
		n[key] = v
		return nil
	case []any:
		i, err := index(n, key, false)
		if err != nil {
			return err
		}
		n[i] = v
		return nil
	}
	return fmt.Errorf("cannot set %q in a %T", key, node)
}

// index parses a list index; end allows len(list) (an add at the end).
func index(list []any, key string, end bool) (int, error) {
	i, err := strconv.Atoi(key)
	limit := len(list)
	if end {
		limit++
	}
	if err != nil || i < 0 || i >= limit {
		return 0, fmt.Errorf("index %q out of range (%d items)", key, len(list))
	}
	return i, nil
}
