package k8s

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator/manila"
	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/diff"
)

// manilaState is the emulator's GET /admin/manila/state, or the same read
// from the real Manila through its API (shares with their access-rule
// count, share snapshots), so the Manila flows do not care which cloud
// they run on.
type manilaState struct {
	Shares    []manila.ShareView    `json:"shares"`
	Snapshots []manila.SnapshotView `json:"snapshots"`
}

func (s *manilaState) share(id string) *manila.ShareView {
	for i := range s.Shares {
		if s.Shares[i].ID == id {
			return &s.Shares[i]
		}
	}
	return nil
}

func (s *manilaState) snapshotsOf(shareID string) []string {
	var out []string
	for _, sn := range s.Snapshots {
		if sn.ShareID == shareID {
			out = append(out, sn.ID)
		}
	}
	return out
}

func (s *manilaState) String() string {
	return fmt.Sprintf("%d shares, %d share snapshots", len(s.Shares), len(s.Snapshots))
}

// realManila reads the real Manila as the project's member; baseline
// holds what was there before the run (left out of every state).
type realManila struct {
	c        *diff.ManilaClient
	baseline map[string]bool
}

func (e *env) manilaState(ctx context.Context) (*manilaState, error) {
	if e.rm != nil {
		return e.rm.state(ctx)
	}
	var s manilaState
	return &s, admin(ctx, e.d.emulatorURL, http.MethodGet, "/admin/manila/state", nil, &s)
}

// newRealManila logs in as the member (the driver's identity) and
// records the baseline; ok is false when the catalog has no Manila.
func newRealManila(ctx context.Context, rc *realCloud) (*realManila, bool, error) {
	c, err := rc.env.Login(ctx)
	if err != nil {
		return nil, false, err
	}
	mc, ok, err := diff.NewManilaClient(ctx, c)
	if err != nil || !ok {
		return nil, ok, err
	}
	rm := &realManila{c: mc}
	st, err := rm.state(ctx)
	if err != nil {
		return nil, true, err
	}
	rm.baseline = map[string]bool{}
	for _, s := range st.Shares {
		rm.baseline[s.ID] = true
	}
	for _, s := range st.Snapshots {
		rm.baseline[s.ID] = true
	}
	return rm, true, nil
}

// manilaClusterKey is the share metadata our Manila driver writes
// (--cluster-id) on every share it creates.
const manilaClusterKey = "manila.csi.openstack.org/cluster"

// manilaMicroversion is what the reads need: share-access-rules (2.45).
const manilaMicroversion = "2.45"

func (rm *realManila) get(ctx context.Context, path string) (map[string]any, error) {
	r, err := rm.c.Do(ctx, http.MethodGet, path, manilaMicroversion, nil)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, r.Status, r.Body)
	}
	return r.JSON(), nil
}

func (rm *realManila) state(ctx context.Context) (*manilaState, error) {
	shares, err := rm.get(ctx, "/shares/detail")
	if err != nil {
		return nil, err
	}
	st := &manilaState{}
	ours := map[string]bool{}
	for _, x := range list(shares, "shares") {
		id := str(x, "id")
		raw, _ := x["metadata"].(map[string]any)
		// Only our driver's shares (its cluster metadata): the project is
		// shared with the other rig tests, whose shares come and go
		// meanwhile and are never this harness's to count or delete.
		if rm.baseline[id] || raw[manilaClusterKey] == nil {
			continue
		}
		ours[id] = true
		rules, err := rm.get(ctx, "/share-access-rules?share_id="+url.QueryEscape(id))
		if err != nil {
			return nil, err
		}
		meta := map[string]string{}
		for k, v := range raw {
			meta[k], _ = v.(string)
		}
		size, _ := x["size"].(float64)
		st.Shares = append(st.Shares, manila.ShareView{ID: id, Name: str(x, "name"), Status: str(x, "status"),
			Proto: str(x, "share_proto"), ShareType: str(x, "share_type_name"), Size: int(size), Metadata: meta,
			AccessRules: len(list(rules, "access_list"))})
	}
	snaps, err := rm.get(ctx, "/snapshots/detail")
	if err != nil {
		return nil, err
	}
	for _, x := range list(snaps, "snapshots") {
		if id := str(x, "id"); !rm.baseline[id] && ours[str(x, "share_id")] {
			size, _ := x["size"].(float64)
			st.Snapshots = append(st.Snapshots, manila.SnapshotView{ID: id, Name: str(x, "name"), Status: str(x, "status"),
				ShareID: str(x, "share_id"), Size: int(size)})
		}
	}
	return st, nil
}

// purge deletes what a failed run left (snapshots first: Manila refuses
// to delete a share with snapshots), until nothing of ours is left.
func (rm *realManila) purge(ctx context.Context, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	first := ""
	for {
		st, err := rm.state(ctx)
		if err != nil {
			return first, err
		}
		if first == "" {
			first = st.String()
		}
		if len(st.Shares)+len(st.Snapshots) == 0 {
			return first, nil
		}
		for _, s := range st.Snapshots {
			if s.Status != "deleting" {
				_, _ = rm.c.Do(ctx, http.MethodDelete, "/snapshots/"+s.ID, manilaMicroversion, nil)
			}
		}
		if len(st.Snapshots) == 0 {
			for _, s := range st.Shares {
				if !strings.HasPrefix(s.Status, "deleting") {
					_, _ = rm.c.Do(ctx, http.MethodDelete, "/shares/"+s.ID, manilaMicroversion, nil)
				}
			}
		}
		select {
		case <-ctx.Done():
			return first, fmt.Errorf("still left after %s: %v", timeout, st)
		case <-time.After(2 * time.Second):
		}
	}
}

func list(m map[string]any, key string) []map[string]any {
	raw, _ := m[key].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, x := range raw {
		if xm, ok := x.(map[string]any); ok {
			out = append(out, xm)
		}
	}
	return out
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
