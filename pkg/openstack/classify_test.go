package openstack

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

func httpErr(status int, body string, hdr map[string]string) error {
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	return gophercloud.ErrUnexpectedResponseCode{URL: "https://user:pw@cinder.example/v3/p/volumes?x=1", Method: "POST",
		Actual: status, Body: []byte(body), ResponseHeader: h}
}

func TestClassifyHTTPResponses(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		kind  Kind
		inMsg string
		retry time.Duration
		reqID string
	}{
		{"404", httpErr(404, `{"itemNotFound": {"code": 404, "message": "Volume x could not be found."}}`, nil), KindNotFound, "could not be found", 0, ""},
		{"cinder state conflict as 400", httpErr(400, `{"badRequest": {"message": "Invalid volume: Volume status must be available or error, but current status is: in-use."}}`, map[string]string{requestIDHeader: "req-1"}), KindConflict, "status must be", 0, "req-1"},
		{"has snapshots", httpErr(400, `{"badRequest": {"message": "Invalid volume: Volume still has 1 dependent snapshots."}}`, nil), KindConflict, "dependent", 0, ""},
		{"invalid input", httpErr(400, `{"badRequest": {"message": "Invalid input received: size must be an integer"}}`, nil), KindBadRequest, "size must be", 0, ""},
		{"nova 409", httpErr(409, `{"conflictingRequest": {"message": "Cannot 'attach_volume' instance while it is in task_state rebooting"}}`, nil), KindConflict, "task_state", 0, ""},
		{"quota 413", httpErr(413, `{"overLimit": {"message": "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota."}}`, nil), KindOverQuota, "quota", 0, ""},
		{"429 retry-after", httpErr(429, `{"overLimit": {"message": "rate limited"}}`, map[string]string{"Retry-After": "7"}), KindRateLimited, "", 7 * time.Second, ""},
		{"503", httpErr(503, `<html>busy</html>`, nil), KindUnavailable, "", 0, ""},
		{"nova device limit", httpErr(403, `{"forbidden": {"message": "The maximum allowed number of disk devices (26) to attach to a single instance has been exceeded."}}`, nil), KindDeviceLimit, "maximum allowed", 0, ""},
		{"nova no free device name", httpErr(400, `{"badRequest": {"message": "No free disk device names for prefix 'vd'"}}`, nil), KindDeviceLimit, "no free", 0, ""},
		{"403 policy", httpErr(403, `{"forbidden": {"message": "Policy doesn't allow volume:create to be performed."}}`, nil), KindForbidden, "Policy", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.err, "op", "res")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			if e.Kind != tc.kind || e.RetryAfter != tc.retry || e.RequestID != tc.reqID {
				t.Errorf("got kind %v retry %v req %q, want %v %v %q", e.Kind, e.RetryAfter, e.RequestID, tc.kind, tc.retry, tc.reqID)
			}
			if !strings.Contains(strings.ToLower(e.Error()), strings.ToLower(tc.inMsg)) {
				t.Errorf("message %q lacks %q", e.Error(), tc.inMsg)
			}
			if strings.Contains(e.Error(), "pw@") || strings.Contains(e.Error(), "cinder.example") {
				t.Errorf("URL leaked: %q", e.Error())
			}
		})
	}
}

func TestClassifyTransportErrors(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "https://user:pw@h/v3", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	err := classify(refused, "volume_create", "")
	if KindOf(err) != KindUnavailable || strings.Contains(err.Error(), "pw@") {
		t.Errorf("refused = %v", err)
	}
	if !notSent(refused) {
		t.Error("a refused dial was not sent, so it may be retried")
	}
	if KindOf(classify(context.DeadlineExceeded, "x", "")) != KindTimeout {
		t.Error("deadline not KindTimeout")
	}
	reauth := &gophercloud.ErrUnableToReauthenticate{ErrOriginal: httpErr(401, "", nil), ErrReauth: httpErr(401, `{"error": {"message": "bad"}}`, nil)}
	if KindOf(classify(reauth, "x", "")) != KindForbidden {
		t.Error("failed re-auth not KindForbidden")
	}
}

func TestRetryRules(t *testing.T) {
	for _, tc := range []struct {
		method string
		err    error
		retry  bool
	}{
		{"GET", httpErr(500, "", nil), true},
		{"GET", httpErr(502, "", nil), true},
		{"GET", httpErr(404, "", nil), false},
		{"POST", httpErr(500, "", nil), false},
		{"POST", httpErr(503, "", nil), true},
		{"DELETE", httpErr(504, "", nil), true}, // idempotent: a repeat answers 404
		{"PUT", httpErr(504, "", nil), false},
		{"POST", httpErr(429, "", nil), true},
		{"POST", &url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{"POST", &url.Error{Op: "Post", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, false},
		{"GET", &url.Error{Op: "Get", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, true},
		{"GET", context.Canceled, false},
	} {
		if _, got := retryReason(tc.method, tc.err); got != tc.retry {
			t.Errorf("%s %v: retry=%t, want %t", tc.method, tc.err, got, tc.retry)
		}
	}
}

func TestDeriveOpKeepsLabelsBounded(t *testing.T) {
	got := deriveOp("GET", "/volume/v3/0b1f6f1c2f0e4c8e9b1a2c3d4e5f6a7b/volumes/6b1b6a32-3f5e-4c6b-9f0a-0c1d2e3f4a51")
	if got != "get /volume/v3/{id}/volumes/{id}" {
		t.Errorf("deriveOp = %q", got)
	}
}

// A URL that net/url refuses (an id with a control character) was never
// sent: it is the caller's bad input, not an unreachable service, so it is
// neither retried nor reconciled, and its message carries neither the URL
// nor the raw character.
func TestClassifyUnparsableURLIsBadRequest(t *testing.T) {
	for _, id := range []string{"a\nb", "a\rb", "a\x7fb", "a\x00b"} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			_, perr := http.NewRequest("GET", "https://user:pw@cinder.example/v3/p/volumes/"+id, nil)
			if perr == nil {
				t.Fatalf("net/url accepted %q", id)
			}
			err := classify(perr, "volume_get", id)
			if KindOf(err) != KindBadRequest {
				t.Errorf("kind = %v, want KindBadRequest (err: %v)", KindOf(err), err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r\x7f\x00") || strings.Contains(msg, "pw@") || strings.Contains(msg, "cinder.example") {
				t.Errorf("message %q carries the raw id or the URL", msg)
			}
			if !strings.Contains(msg, "invalid") {
				t.Errorf("message %q does not say the URL is invalid", msg)
			}
			for _, method := range []string{"GET", "POST", "DELETE"} {
				if _, retry := retryReason(method, perr); retry {
					t.Errorf("%s with an unparsable URL would be retried", method)
				}
			}
			if ambiguous(perr) {
				t.Error("an unparsable URL was never sent, so it is not ambiguous")
			}
		})
	}
}

// Through the real cloud layer: an id with a control character answers
// KindBadRequest at once, with no request reaching the service.
func TestCloudCallWithControlCharacterIDIsBadRequest(t *testing.T) {
	e := startEmulator(t, emulator.Options{})
	s := newSet(t, []string{writeConf(t, e.CloudConf("Global", "demo"))}, Options{ReloadInterval: -1})
	c := mustGet(t, s, "")
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := c.ListVolumes(ctx, ListOpts{Limit: 1}); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	e.ResetCounters()
	for _, id := range []string{"vol\nid", "vol\x7fid"} {
		if _, err := c.GetVolume(ctx, id); KindOf(err) != KindBadRequest || strings.ContainsAny(err.Error(), "\n\x7f") {
			t.Errorf("GetVolume(%q) = %v, want KindBadRequest without the raw character", id, err)
		}
		if err := c.DeleteVolume(ctx, id); KindOf(err) != KindBadRequest {
			t.Errorf("DeleteVolume(%q) = %v, want KindBadRequest", id, err)
		}
	}
	for k, n := range e.Counters() {
		if !strings.Contains(k, "/identity/") && !strings.Contains(k, "/v3/auth") {
			t.Errorf("%d request(s) %s reached the service", n, k)
		}
	}
}
