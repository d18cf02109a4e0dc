// Package logging sets up klog for the plugin: its usual flags plus
// --logging-format=text|json.
//
// The JSON format is a small logr sink of our own (json.go) rather than
// k8s.io/component-base/logs/json: that module would bring zap, the
// component-base feature-gate and metrics machinery and another dozen
// modules into a driver that only needs one object per line. The output
// follows component-base's shape ("ts", "caller", "msg", "v", then the
// key/value pairs, "err" for errors), so existing log pipelines parse it.
package logging

import (
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/klog/v2"
)

// Formats accepted by --logging-format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

var format = FormatText

// AddFlags registers klog's flags (-v, -vmodule, ...) unless fs already has
// them, and --logging-format. Call Setup after parsing.
func AddFlags(fs *flag.FlagSet) {
	if fs.Lookup("v") == nil {
		klog.InitFlags(fs)
	}
	fs.StringVar(&format, "logging-format", FormatText, "log format: text (klog) or json (one object per line)")
}

// Setup applies the parsed flags. An unknown format is an error naming it.
func Setup() error {
	return setup(format, os.Stderr)
}

func setup(f string, w io.Writer) error {
	switch f {
	case FormatText:
		return nil
	case FormatJSON:
		// klog still checks -v and -vmodule before calling the sink, and
		// routes klog.Background()/FromContext loggers through itself.
		klog.SetLogger(NewJSONLogger(w))
		return nil
	default:
		return fmt.Errorf("--logging-format %q: want %q or %q", f, FormatText, FormatJSON)
	}
}

// Flush writes out buffered log lines; call it before exit.
func Flush() { klog.Flush() }
