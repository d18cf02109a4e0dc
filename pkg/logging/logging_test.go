package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

func decodeLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, line)
		}
		lines = append(lines, obj)
	}
	return lines
}

type point struct{ X, Y int }

type stringer struct{}

func (stringer) String() string { return "from String" }

type marshaler struct{}

func (marshaler) MarshalLog() any { return map[string]int{"nested": 1} }

type panicky struct{}

func (panicky) String() string { panic("boom") }

func TestJSONSinkLineShape(t *testing.T) {
	var buf bytes.Buffer
	logger := NewJSONLogger(&buf).WithName("csi").WithValues("requestID", "r-1")
	logger.V(3).Info("Attached volume", "volumeID", "vol-1", "took", 1500*time.Millisecond,
		"point", point{1, 2}, "stringer", stringer{}, "marshaler", marshaler{},
		"raw", json.RawMessage(`{"a":true}`), "panicky", panicky{}, "odd")
	logger.Error(errors.New("cinder is busy"), "Attach failed", "volumeID", "vol-2")

	lines := decodeLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	info := lines[0]
	want := map[string]any{
		"msg": "Attached volume", "v": 3.0, "logger": "csi", "requestID": "r-1", "volumeID": "vol-1",
		"took": "1.5s", "stringer": "from String", "odd": "(MISSING)",
		"panicky": "<panic formatting value: boom>",
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("info[%q] = %#v, want %#v", k, info[k], v)
		}
	}
	if p, _ := info["point"].(map[string]any); p["X"] != 1.0 || p["Y"] != 2.0 {
		t.Errorf("point = %#v, want an object", info["point"])
	}
	if m, _ := info["marshaler"].(map[string]any); m["nested"] != 1.0 {
		t.Errorf("marshaler = %#v, want its MarshalLog object", info["marshaler"])
	}
	if r, _ := info["raw"].(map[string]any); r["a"] != true {
		t.Errorf("raw = %#v, want the raw JSON nested", info["raw"])
	}
	if caller, _ := info["caller"].(string); !strings.HasPrefix(caller, "logging/logging_test.go:") {
		t.Errorf("caller = %q, want this test file", info["caller"])
	}
	if ts, _ := info["ts"].(float64); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("ts = %v, want the current Unix time in seconds", info["ts"])
	}
	errLine := lines[1]
	if errLine["err"] != "cinder is busy" || errLine["msg"] != "Attach failed" || errLine["volumeID"] != "vol-2" {
		t.Errorf("error line = %v", errLine)
	}
	if _, hasV := errLine["v"]; hasV {
		t.Errorf("error line has a verbosity: %v", errLine)
	}
}

// Through klog, as the plugin uses it: klog filters by -v, the sink writes,
// and the caller is the klog call site.
func TestSetupJSONRoutesKlog(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--logging-format=json", "-v=2"}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		klog.ClearLogger()
		_ = fs.Set("v", "0")
		format = FormatText
	}()
	var buf bytes.Buffer
	if err := setup(format, &buf); err != nil {
		t.Fatal(err)
	}
	klog.InfoS("Staged volume", "volumeID", "vol-1")
	klog.V(2).InfoS("Shown at v=2")
	klog.V(3).InfoS("Hidden at v=2")
	klog.ErrorS(errors.New("mount failed"), "Stage failed", "volumeID", "vol-1")
	klog.Background().WithValues("requestID", "r-9").Info("Contextual")
	Flush()

	lines := decodeLines(t, buf.String())
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, l["msg"].(string))
		if caller, _ := l["caller"].(string); !strings.HasPrefix(caller, "logging/logging_test.go:") {
			t.Errorf("%q: caller = %q, want this test file", l["msg"], caller)
		}
	}
	if got, want := strings.Join(msgs, "|"), "Staged volume|Shown at v=2|Stage failed|Contextual"; got != want {
		t.Errorf("messages = %s, want %s", got, want)
	}
	if lines[3]["requestID"] != "r-9" {
		t.Errorf("contextual logger values lost: %v", lines[3])
	}
}

func TestSetupRejectsAnUnknownFormat(t *testing.T) {
	err := setup("yaml", &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"yaml"`) {
		t.Fatalf("setup(yaml) = %v, want an error naming the format", err)
	}
	if err := setup(FormatText, &bytes.Buffer{}); err != nil {
		t.Fatalf("setup(text) = %v", err)
	}
}

func TestAddFlagsToleratesKlogFlagsAlreadyRegistered(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	klog.InitFlags(fs)
	AddFlags(fs) // must not panic on a duplicate -v
	if fs.Lookup("logging-format") == nil {
		t.Fatal("--logging-format not registered")
	}
}

var _ logr.LogSink = (*jsonSink)(nil)
