package sidecarargs

import (
	"reflect"
	"strings"
	"testing"
)

func TestPatchOps(t *testing.T) {
	doc := func() map[string]any {
		return map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "a", "args": []any{"--x"}},
			map[string]any{"name": "b"},
		}}}
	}
	cases := []struct {
		name, patch, err string
		want             map[string]any
	}{
		{name: "test and append", patch: "- {op: test, path: /spec/containers/0/name, value: a}\n- {op: add, path: /spec/containers/0/args/-, value: --y}",
			want: map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "a", "args": []any{"--x", "--y"}}, map[string]any{"name": "b"}}}}},
		{name: "insert and replace", patch: "- {op: add, path: /spec/containers/0/args/0, value: --w}\n- {op: replace, path: /spec/containers/1/name, value: c}",
			want: map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "a", "args": []any{"--w", "--x"}}, map[string]any{"name": "c"}}}}},
		{name: "failed test", patch: "- {op: test, path: /spec/containers/1/name, value: a}", err: "found b, want a"},
		{name: "bad index", patch: "- {op: add, path: /spec/containers/5/args/-, value: --y}", err: "out of range"},
		{name: "unknown op", patch: "- {op: remove, path: /spec}", err: "not supported"},
		{name: "replace missing", patch: "- {op: replace, path: /spec/nope, value: 1}", err: "no \"nope\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := doc()
			err := kustomizePatch{Patch: c.patch}.apply(d)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, c.want) {
				t.Errorf("got %v, want %v", d, c.want)
			}
		})
	}
}
