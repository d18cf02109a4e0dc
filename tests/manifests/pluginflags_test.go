package manifests_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cinder-csi/cinder-csi/tests/manifests/sidecarargs"
)

// flagDefiners are the flag.FlagSet methods that define a flag; the flag
// name is their first string-literal argument.
var flagDefiners = map[string]sidecarargs.FlagKind{
	"Bool": sidecarargs.Bool, "BoolVar": sidecarargs.Bool, "BoolFunc": sidecarargs.Bool,
	"String": sidecarargs.Value, "StringVar": sidecarargs.Value,
	"Int": sidecarargs.Value, "IntVar": sidecarargs.Value, "Int64": sidecarargs.Value, "Int64Var": sidecarargs.Value,
	"Uint": sidecarargs.Value, "UintVar": sidecarargs.Value, "Uint64": sidecarargs.Value, "Uint64Var": sidecarargs.Value,
	"Float64": sidecarargs.Value, "Float64Var": sidecarargs.Value,
	"Duration": sidecarargs.Value, "DurationVar": sidecarargs.Value,
	"Var": sidecarargs.Value, "Func": sidecarargs.Value, "TextVar": sidecarargs.Value,
}

var flagName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// klogFlags are what klog.InitFlags registers.
var klogFlags = []string{"v", "vmodule", "logtostderr", "alsologtostderr", "log_dir", "log_file",
	"log_file_max_size", "skip_headers", "skip_log_headers", "add_dir_header", "one_output",
	"stderrthreshold", "log_backtrace_at"}

// pluginFlags reads the flags the plugin binary defines from its source
// (cmd/cinder-csi-plugin and pkg/), so the manifests are checked against
// the real binary's command line, not a copy of it.
func pluginFlags(t *testing.T, root string) map[string]sidecarargs.FlagKind {
	t.Helper()
	known := map[string]sidecarargs.FlagKind{}
	fset := token.NewFileSet()
	for _, dir := range []string{"cmd/cinder-csi-plugin", "pkg"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "klog" && sel.Sel.Name == "InitFlags" {
					for _, k := range klogFlags {
						known[k] = sidecarargs.Value
					}
					return true
				}
				kind, ok := flagDefiners[sel.Sel.Name]
				if !ok {
					return true
				}
				for i, a := range call.Args {
					if i > 1 {
						break
					}
					lit, ok := a.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					name, err := strconv.Unquote(lit.Value)
					if err == nil && flagName.MatchString(name) {
						known[name] = kind
					}
					break
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := known["endpoint"]; !ok {
		t.Fatal("could not find the plugin's --endpoint flag in cmd/cinder-csi-plugin")
	}
	// klog's bool flags must not swallow the next argument.
	for _, b := range []string{"logtostderr", "alsologtostderr", "skip_headers", "skip_log_headers", "add_dir_header", "one_output"} {
		if _, ok := known[b]; ok {
			known[b] = sidecarargs.Bool
		}
	}
	return known
}
