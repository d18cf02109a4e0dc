package host

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// FaultName is the wrapper key of an OpenStack error body for code, as
// Cinder, Nova and Manila write it: {"itemNotFound": {"code": 404, ...}}.
func FaultName(code int) string {
	switch code {
	case 400:
		return "badRequest"
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	case 404:
		return "itemNotFound"
	case 405:
		return "badMethod"
	case 406:
		return "notAcceptable"
	case 409:
		return "conflictingRequest"
	case 413, 429:
		return "overLimit"
	case 503:
		return "serviceUnavailable"
	default:
		return "computeFault"
	}
}

// WriteFault answers code with the fault wrapper and msg.
func WriteFault(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]any{FaultName(code): map[string]any{"code": code, "message": msg}})
}

// WriteJSON answers code with v as JSON (no body when v is nil).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// DecodeBody reads a JSON body of at most 1 MiB into v; on failure it
// answers 400 and returns false.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		WriteFault(w, http.StatusBadRequest, "Malformed request body: "+err.Error())
		return false
	}
	return true
}

// NewUUID returns a random version-4 UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// OpenStackTime is the timestamp format of Cinder and Manila bodies.
const OpenStackTime = "2006-01-02T15:04:05.000000"

// Time renders t as OpenStackTime, or null when t is zero.
func Time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(OpenStackTime)
}

// ParseDictFilter reads the JSON or Python-dict text OpenStack clients
// send for a map-valued query filter such as ?metadata= (gophercloud sends
// {'k':'v'}).
func ParseDictFilter(s string) (map[string]string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		if err2 := json.Unmarshal([]byte(strings.ReplaceAll(s, "'", `"`)), &m); err2 != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}
