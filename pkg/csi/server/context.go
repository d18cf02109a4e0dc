package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
)

// RequestIDKey is the gRPC metadata key carrying a request id. An incoming
// value is reused, so a caller's id follows the call through our logs; our
// id is sent back in the response header under the same key.
const RequestIDKey = "x-request-id"

// maxRequestIDLen bounds an incoming id: it comes from the caller and ends
// up in every log line of the call.
const maxRequestIDLen = 128

type ctxKey int

const (
	requestIDKey ctxKey = iota
	timingsKey
)

// RequestID returns the id of the CSI call ctx belongs to, or "" outside a
// call. Handlers log it with their own messages ("requestID", id).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithRequestID returns ctx carrying id; for tests of handlers that read it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// requestIDFrom reuses a well-formed incoming x-request-id or makes one.
func requestIDFrom(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get(RequestIDKey) {
			if validRequestID(v) {
				return v
			}
		}
	}
	return newRequestID()
}

// validRequestID accepts printable ASCII without spaces or quotes, so a
// caller cannot inject fields or line breaks into our logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// newRequestID returns a random UUID-formatted id ("csi-" keeps it apart
// from OpenStack's "req-" ids in mixed logs).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return "csi-" + string(out[:])
}

// Timing is one named phase of a call, reported in the slow-call log.
type Timing struct {
	Name string
	Took time.Duration
}

type timings struct {
	mu   sync.Mutex
	list []Timing
}

// RecordTiming notes that a phase of the current call (e.g. "waitAttached",
// "mkfs") took d. The interceptor logs the phases of calls slower than the
// slow-call threshold. Outside a call it does nothing.
func RecordTiming(ctx context.Context, name string, d time.Duration) {
	t, _ := ctx.Value(timingsKey).(*timings)
	if t == nil {
		return
	}
	t.mu.Lock()
	t.list = append(t.list, Timing{Name: name, Took: d})
	t.mu.Unlock()
}

// Timings returns the phases recorded so far for the call ctx belongs to.
func Timings(ctx context.Context) []Timing {
	t, _ := ctx.Value(timingsKey).(*timings)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Timing(nil), t.list...)
}

func withTimings(ctx context.Context) context.Context {
	return context.WithValue(ctx, timingsKey, &timings{})
}
