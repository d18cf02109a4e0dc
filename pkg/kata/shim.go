package kata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// DefaultShimSocketDirs are where the Go runtime (/run/vc/sbs) and
// runtime-rs (/run/kata) put a sandbox's shim-monitor.sock, tried in the
// order Kata's own shim client uses.
var DefaultShimSocketDirs = []string{"/run/vc/sbs", "/run/kata"}

const (
	shimSocketName = "shim-monitor.sock"
	statsURLPath   = "/direct-volume/stats"

	// DefaultShimTimeout is kata-runtime's own client timeout for the
	// management socket (defaultTimeout in shimclient); the agent answers a
	// statfs well inside it, and kubelet's stats loop must not stall on a
	// wedged shim.
	DefaultShimTimeout = 3 * time.Second
)

// Stats units as the agent encodes them (the CSI enum values).
const (
	unitBytes  = 1
	unitInodes = 2
)

// VolumeUsage mirrors the agent's VolumeUsage as the Go shim marshals it
// (protobuf struct through encoding/json, zero fields omitted).
type VolumeUsage struct {
	Available uint64 `json:"available,omitempty"`
	Total     uint64 `json:"total,omitempty"`
	Used      uint64 `json:"used,omitempty"`
	Unit      int    `json:"unit,omitempty"`
}

// VolumeCondition mirrors the agent's VolumeCondition.
type VolumeCondition struct {
	Abnormal bool   `json:"abnormal,omitempty"`
	Message  string `json:"message,omitempty"`
}

// VolumeStats is the body of GET /direct-volume/stats.
type VolumeStats struct {
	Usage     []VolumeUsage    `json:"usage,omitempty"`
	Condition *VolumeCondition `json:"volume_condition,omitempty"`
}

// errNoLiveSandbox means no recorded sandbox id has a shim that answers.
var errNoLiveSandbox = errors.New("no running Kata sandbox holds the volume")

// shimClient asks Kata shims for guest-side volume stats.
type shimClient struct {
	socketDirs []string
	timeout    time.Duration
}

// socketFor returns the first existing shim socket of a sandbox id.
func (c *shimClient) socketFor(sandboxID string) string {
	if sandboxID == "" || sandboxID != filepath.Base(sandboxID) || sandboxID[0] == '.' {
		return "" // a name we would not trust inside a path
	}
	for _, dir := range c.socketDirs {
		p := filepath.Join(dir, sandboxID, shimSocketName)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p
		}
	}
	return ""
}

// stats tries the sandbox ids in order and returns the first live shim's
// answer. Stale ids accumulate in a record directory (the runtime never
// removes them), so the first id is not necessarily the live one. A shim
// that accepts the connection but answers with an error is reported as
// such; only when nothing answers is it errNoLiveSandbox.
func (c *shimClient) stats(ctx context.Context, sandboxIDs []string, device string) (*VolumeStats, string, error) {
	var shimErr error
	for _, id := range sandboxIDs {
		sock := c.socketFor(id)
		if sock == "" {
			continue
		}
		st, live, err := c.query(ctx, sock, device)
		if err == nil {
			return st, id, nil
		}
		if live {
			shimErr = fmt.Errorf("the Kata shim of sandbox %s: %w", id, err)
		}
	}
	if shimErr != nil {
		return nil, "", shimErr
	}
	return nil, "", errNoLiveSandbox
}

// query performs one request. live reports whether the shim accepted the
// connection (so an error is the shim's answer, not a dead socket).
func (c *shimClient) query(ctx context.Context, sock, device string) (*VolumeStats, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var connected atomic.Bool
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", sock)
			if err == nil {
				connected.Store(true)
			}
			return conn, err
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	// Kata's CLI escapes the device with PathEscape into the query; the Go
	// shim unescapes it again, so the same spelling is used here.
	u := "http://shim" + statsURLPath + "?path=" + url.PathEscape(device)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, connected.Load(), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, true, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, true, fmt.Errorf("HTTP %d: %s", resp.StatusCode, trimBody(body))
	}
	var st VolumeStats
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, true, fmt.Errorf("undecodable stats %q: %w", trimBody(body), err)
	}
	return &st, true, nil
}

func trimBody(b []byte) string {
	const limit = 256
	if len(b) > limit {
		b = b[:limit]
	}
	return string(b)
}
