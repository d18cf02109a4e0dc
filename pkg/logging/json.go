package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// NewJSONLogger returns a logr.Logger writing one JSON object per line to
// w. It logs at every verbosity it is asked to: with klog.SetLogger, klog
// does the -v filtering before calling it.
func NewJSONLogger(w io.Writer) logr.Logger {
	return logr.New(&jsonSink{out: &lockedWriter{w: w}})
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}

type jsonSink struct {
	out       *lockedWriter
	name      string
	values    []any
	callDepth int // logr's frames plus WithCallDepth
}

var (
	_ logr.LogSink          = (*jsonSink)(nil)
	_ logr.CallDepthLogSink = (*jsonSink)(nil)
)

func (s *jsonSink) Init(info logr.RuntimeInfo) { s.callDepth += info.CallDepth }

func (s *jsonSink) Enabled(int) bool { return true }

func (s *jsonSink) Info(level int, msg string, kv ...any) {
	s.write(level, nil, msg, kv)
}

func (s *jsonSink) Error(err error, msg string, kv ...any) {
	if err == nil {
		s.write(0, nil, msg, kv)
		return
	}
	s.write(0, err, msg, kv)
}

func (s *jsonSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any(nil), s.values...), kv...)
	return &c
}

func (s *jsonSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name == "" {
		c.name = name
	} else {
		c.name += "." + name
	}
	return &c
}

func (s *jsonSink) WithCallDepth(depth int) logr.LogSink {
	c := *s
	c.callDepth += depth
	return &c
}

func (s *jsonSink) write(level int, err error, msg string, kv []any) {
	var b bytes.Buffer
	now := time.Now()
	b.WriteString(`{"ts":`)
	b.WriteString(strconv.FormatFloat(float64(now.UnixNano())/1e9, 'f', 6, 64))
	// Frames: write, Info/Error, logr.Logger method, then callDepth more.
	if _, file, line, ok := runtime.Caller(s.callDepth + 2); ok {
		b.WriteString(`,"caller":`)
		b.Write(jsonString(shortFile(file) + ":" + strconv.Itoa(line)))
	}
	if s.name != "" {
		b.WriteString(`,"logger":`)
		b.Write(jsonString(s.name))
	}
	b.WriteString(`,"msg":`)
	b.Write(jsonString(msg))
	if err != nil {
		b.WriteString(`,"err":`)
		b.Write(jsonValue(err))
	} else {
		b.WriteString(`,"v":`)
		b.WriteString(strconv.Itoa(level))
	}
	writePairs(&b, s.values)
	writePairs(&b, kv)
	b.WriteString("}\n")
	s.out.write(b.Bytes())
}

// shortFile keeps the package directory and file name, as klog does.
func shortFile(file string) string {
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		if j := strings.LastIndexByte(file[:i], '/'); j >= 0 {
			return file[j+1:]
		}
	}
	return file
}

func writePairs(b *bytes.Buffer, kv []any) {
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		b.WriteByte(',')
		b.Write(jsonString(key))
		b.WriteByte(':')
		if i+1 < len(kv) {
			b.Write(jsonValue(kv[i+1]))
		} else {
			b.WriteString(`"(MISSING)"`)
		}
	}
}

func jsonString(s string) []byte {
	out, _ := json.Marshal(s) // a string always marshals
	return out
}

// jsonValue renders one logged value. logr.Marshaler wins (klog.KObj and
// our sanitized messages use it), then error text, then a type's own JSON,
// then fmt.Stringer; anything json cannot encode is printed with %+v. A
// panicking String or MarshalLog becomes a message, not a crash.
func jsonValue(v any) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			out = jsonString(fmt.Sprintf("<panic formatting value: %v>", r))
		}
	}()
	if m, ok := v.(logr.Marshaler); ok {
		v = m.MarshalLog()
	}
	switch x := v.(type) {
	case json.RawMessage:
		if json.Valid(x) {
			return x
		}
		return jsonString(string(x))
	case error:
		return jsonString(x.Error())
	case json.Marshaler:
	case fmt.Stringer:
		return jsonString(x.String())
	}
	out, err := json.Marshal(v)
	if err != nil {
		return jsonString(fmt.Sprintf("%+v", v))
	}
	return out
}
