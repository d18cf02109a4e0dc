package diff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// runManilaEdges covers the answers a driver meets less often: calls on a
// share that is not ready, refused access rules, views at older
// microversions, paging, snapshot metadata, zones, share networks,
// scheduler hints and quota refusals. t.SetQuota changes the caller's
// Manila quota (an admin's call) and restores the defaults with nil.
func runManilaEdges(ctx context.Context, t ManilaTarget, logf func(string, ...any)) (out []Obs, err error) {
	m := t.M
	prefix := "diff-" + rig.NewUUID()[:8] + "-"
	var shares, snaps, networks []string
	quotaChanged := false
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		if quotaChanged {
			_ = t.SetQuota(cctx, nil)
		}
		for _, id := range snaps {
			_, _ = m.Do(cctx, "DELETE", "/snapshots/"+id, manilaMV, nil)
		}
		for _, id := range snaps {
			mpollGone(cctx, m, "/snapshots/"+id, "snapshot", "status")
		}
		for _, id := range shares {
			mpoll(cctx, m, "/shares/"+id, "share", "status", nil, "available", "error", "extending_error", "shrinking_error", "error_deleting")
			_, _ = m.Do(cctx, "DELETE", "/shares/"+id, manilaMV, nil)
		}
		for _, id := range shares {
			if st := mpollGone(cctx, m, "/shares/"+id, "share", "status"); !slices.Contains(st, "gone") && t.ForceDelete != nil {
				_ = t.ForceDelete(cctx, id)
				mpollGone(cctx, m, "/shares/"+id, "share", "status")
			}
		}
		for _, id := range networks {
			_, _ = m.Do(cctx, "DELETE", "/share-networks/"+id, manilaMV, nil)
		}
	}()
	step := func(name string) *Obs {
		out = append(out, Obs{Step: "manila: " + name})
		return &out[len(out)-1]
	}
	call := func(o *Obs, method, path, mv string, body any) (*rig.Response, error) {
		r, err := m.Do(ctx, method, path, mv, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Step, err)
		}
		errorOf(o, r)
		logf("%s %s: %s %s → %d %s", t.Name, o.Step, method, path, r.Status, truncate(string(r.Body), 300))
		// Whatever a POST made is deleted at the end, refusal or not.
		if id := str(field(r, "snapshot")["id"]); method == "POST" && path == "/snapshots" && id != "" {
			snaps = append(snaps, id)
		}
		if id := str(field(r, "share")["id"]); method == "POST" && path == "/shares" && id != "" {
			shares = append(shares, id)
		}
		return r, nil
	}
	simple := func(name, method, path, mv string, body any) (*rig.Response, error) {
		return call(step(name), method, path, mv, body)
	}
	newShare := func(o *Obs, body map[string]any) (string, *rig.Response, error) {
		body["name"] = prefix + "s"
		r, err := call(o, "POST", "/shares", manilaMV, map[string]any{"share": body})
		if err != nil {
			return "", nil, err
		}
		return str(field(r, "share")["id"]), r, nil
	}
	action := func(id string) string { return "/shares/" + id + "/action" }

	// Calls on a share that is still being made.
	o := step("create, then allow access at once")
	sh, _, err := newShare(o, map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype"})
	if err != nil || sh == "" {
		return out, err
	}
	if _, err := simple("allow access while creating", "POST", action(sh), manilaMV,
		map[string]any{"allow_access": map[string]any{"access_type": "cephx", "access_to": "early", "access_level": "rw"}}); err != nil {
		return out, err
	}
	if _, err := simple("delete while creating", "DELETE", "/shares/"+sh, manilaMV, nil); err != nil {
		return out, err
	}
	o.States = mpoll(ctx, m, "/shares/"+sh, "share", "status", nil, "available", "error")

	// Refused access rules.
	for _, c := range []struct {
		name, mv string
		rule     map[string]any
	}{
		{"cephx id with a period", manilaMV, map[string]any{"access_type": "cephx", "access_to": "a.b", "access_level": "rw"}},
		{"unknown access type", manilaMV, map[string]any{"access_type": "xyz", "access_to": "a", "access_level": "rw"}},
		{"cephx before 2.13", "2.12", map[string]any{"access_type": "cephx", "access_to": "old", "access_level": "rw"}},
		{"rule metadata before 2.45", "2.44", map[string]any{"access_type": "cephx", "access_to": "meta", "access_level": "rw", "metadata": map[string]string{"k": "v"}}},
	} {
		if _, err := simple(c.name, "POST", action(sh), c.mv, map[string]any{"allow_access": c.rule}); err != nil {
			return out, err
		}
	}
	if _, err := simple("unknown action", "POST", action(sh), manilaMV, map[string]any{"frobnicate": nil}); err != nil {
		return out, err
	}
	if _, err := simple("share-access-rules without share_id", "GET", "/share-access-rules", manilaMV, nil); err != nil {
		return out, err
	}
	o = step("rule with metadata, then its metadata updated and read")
	r, err := call(o, "POST", action(sh), manilaMV, map[string]any{"allow_access": map[string]any{"access_type": "cephx",
		"access_to": "diff-" + prefix[5:13] + "-m", "access_level": "ro", "metadata": map[string]string{"k": "v"}}})
	if err != nil {
		return out, err
	}
	rule := str(field(r, "access")["id"])
	mpoll(ctx, m, "/share-access-rules/"+rule, "access", "state", nil, "active", "error")
	if r, err = call(o, "PUT", "/share-access-rules/"+rule+"/metadata", manilaMV, map[string]any{"metadata": map[string]string{"k2": "v2"}}); err != nil {
		return out, err
	}
	o.Extra = fmt.Sprint(r.JSON()["metadata"])
	if r, err = m.Do(ctx, "GET", "/share-access-rules/"+rule, manilaMV, nil); err == nil {
		o.Extra += fmt.Sprintf(" then %v", field(r, "access")["metadata"])
	}
	o = step("access list at older microversions")
	var views []string
	for _, mv := range []string{"2.20", "2.27", "2.32"} {
		r, err := m.Do(ctx, "POST", action(sh), mv, map[string]any{"access_list": nil})
		if err != nil {
			return out, err
		}
		for _, a := range anyList(r.JSON()["access_list"]) {
			views = append(views, fmt.Sprintf("%s: %v %s", mv, a["state"], keysOf(a)))
		}
	}
	o.Extra = strings.Join(views, "; ")

	// Views at older microversions, update, export location by id.
	o = step("share views at 2.0, 2.8, 2.44")
	views = nil
	for _, mv := range []string{"2.0", "2.8", "2.44"} {
		r, err := m.Do(ctx, "GET", "/shares/"+sh, mv, nil)
		if err != nil {
			return out, err
		}
		s := field(r, "share")
		views = append(views, fmt.Sprintf("%s: share_type is id=%v %s", mv, len(str(s["share_type"])) == 36, keysOf(s)))
	}
	o.Extra = strings.Join(views, "; ")
	o = step("share rename")
	if r, err = call(o, "PUT", "/shares/"+sh, manilaMV, map[string]any{"share": map[string]any{"display_name": prefix + "renamed"}}); err != nil {
		return out, err
	}
	o.Extra = strings.TrimPrefix(str(field(r, "share")["name"]), prefix)
	o = step("export location by id")
	r, err = m.Do(ctx, "GET", "/shares/"+sh+"/export_locations", manilaMV, nil)
	if err != nil {
		return out, err
	}
	if els := anyList(r.JSON()["export_locations"]); len(els) > 0 {
		if r, err = call(o, "GET", "/shares/"+sh+"/export_locations/"+str(els[0]["id"]), manilaMV, nil); err != nil {
			return out, err
		}
		o.Extra = keysOf(field(r, "export_location"))
	}
	if _, err := simple("unknown export location", "GET", "/shares/"+sh+"/export_locations/"+rig.NewUUID(), manilaMV, nil); err != nil {
		return out, err
	}

	// Snapshot metadata (2.73) and snapshot lists.
	if _, err := simple("snapshot with metadata at 2.72", "POST", "/snapshots", "2.72",
		map[string]any{"snapshot": map[string]any{"share_id": sh, "name": prefix + "snap-old", "metadata": map[string]string{"k": "v"}}}); err != nil {
		return out, err
	}
	o = step("snapshot with metadata at 2.73")
	if r, err = call(o, "POST", "/snapshots", manilaMV, map[string]any{"snapshot": map[string]any{"share_id": sh, "name": prefix + "snap", "metadata": map[string]string{"k": "v"}}}); err != nil {
		return out, err
	}
	if snap := str(field(r, "snapshot")["id"]); snap != "" {
		o.States = mpoll(ctx, m, "/snapshots/"+snap, "snapshot", "status", nil, "available", "error")
		if r, err := m.Do(ctx, "GET", "/snapshots/"+snap+"/metadata", manilaMV, nil); err == nil {
			o.Extra = fmt.Sprint(r.JSON()["metadata"])
		}
	}
	o = step("snapshots of the share")
	if r, err = call(o, "GET", "/snapshots/detail?share_id="+sh, manilaMV, nil); err != nil {
		return out, err
	}
	o.Extra = listFacts(r, "snapshots")

	// Zones, share networks, scheduler hints.
	o = step("create in zone nova")
	if _, r, err = newShare(o, map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "availability_zone": "nova"}); err != nil {
		return out, err
	}
	o.Extra = fmt.Sprintf("az=%v", field(r, "share")["availability_zone"])
	if _, err := simple("create in an unknown zone", "POST", "/shares", manilaMV,
		map[string]any{"share": map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "availability_zone": "no-such-zone", "name": prefix + "z"}}); err != nil {
		return out, err
	}
	o = step("share network create")
	if r, err = call(o, "POST", "/share-networks", manilaMV, map[string]any{"share_network": map[string]any{"name": prefix + "net"}}); err != nil {
		return out, err
	}
	if net := str(field(r, "share_network")["id"]); net != "" {
		networks = append(networks, net)
		o.Extra = keysOf(field(r, "share_network"))
		o2 := step("share with a network on a type without share servers")
		netShare, r, err := newShare(o2, map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "share_network_id": net})
		if err != nil {
			return out, err
		}
		if netShare != "" {
			o2.States = mpoll(ctx, m, "/shares/"+netShare, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
			o3 := step("delete of that share")
			if _, err := call(o3, "DELETE", "/shares/"+netShare, manilaMV, nil); err != nil {
				return out, err
			}
			o3.States = mpollGone(ctx, m, "/shares/"+netShare, "share", "status")
			o4 := step("user messages of that share")
			if r, err = call(o4, "GET", "/messages?resource_id="+netShare+"&sort_key=created_at&sort_dir=asc", manilaMV, nil); err != nil {
				return out, err
			}
			var msgs []string
			for _, msg := range anyList(r.JSON()["messages"]) {
				msgs = append(msgs, fmt.Sprintf("%v/%v %v", msg["action_id"], msg["detail_id"], msg["user_message"]))
			}
			o4.Extra = strings.Join(msgs, "; ")
		}
	}
	o = step("share with a same_host hint (2.65)")
	var hinted string
	if hinted, r, err = newShare(o, map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype",
		"scheduler_hints": map[string]any{"same_host": sh}}); err != nil {
		return out, err
	}
	if hinted != "" {
		o.States = mpoll(ctx, m, "/shares/"+hinted, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
	}

	// Hints naming an unknown share, list parameters, a create without a size.
	if _, err := simple("same_host hint naming an unknown share", "POST", "/shares", manilaMV, map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "h", "scheduler_hints": map[string]any{"same_host": rig.NewUUID()}}}); err != nil {
		return out, err
	}
	o = step("the same hint below 2.65")
	if r, err = call(o, "POST", "/shares", "2.64", map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "h", "scheduler_hints": map[string]any{"same_host": rig.NewUUID()}}}); err != nil {
		return out, err
	}
	if id := str(field(r, "share")["id"]); id != "" {
		shares = append(shares, id)
		o.States = mpoll(ctx, m, "/shares/"+id, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
	}
	if _, err := simple("list with an unknown sort key", "GET", "/shares/detail?sort_key=bogus", manilaMV, nil); err != nil {
		return out, err
	}
	if _, err := simple("list with a bad limit", "GET", "/shares/detail?limit=abc", manilaMV, nil); err != nil {
		return out, err
	}
	o = step("list from an unknown marker")
	if r, err = call(o, "GET", "/shares?marker="+rig.NewUUID(), manilaMV, nil); err != nil {
		return out, err
	}
	o.Extra = fmt.Sprintf("non-empty=%v", len(anyList(r.JSON()["shares"])) > 0)
	if _, err := simple("create without a size", "POST", "/shares", manilaMV, map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "share_type": "cephfstype", "name": prefix + "nosize"}}); err != nil {
		return out, err
	}

	// Quota refusals: shares and gigabytes just above what is used.
	if t.SetQuota == nil {
		return out, nil
	}
	o = step("quota lowered")
	r, err = m.Do(ctx, "GET", "/quota-sets/"+m.ProjectID+"/detail", manilaMV, nil)
	if err != nil {
		return out, err
	}
	qset := field(r, "quota_set")
	used := func(k string) int { v, _ := qset[k].(map[string]any); return int(num(v["in_use"])) }
	if err := t.SetQuota(ctx, map[string]int{"shares": used("shares"), "gigabytes": used("gigabytes") + 1, "snapshots": used("snapshots")}); err != nil {
		return out, err
	}
	quotaChanged = true
	o.Extra = "shares and snapshots at their use, gigabytes one above"
	o = step("create over the shares quota")
	if _, err := call(o, "POST", "/shares", manilaMV,
		map[string]any{"share": map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "q"}}); err != nil {
		return out, err
	}
	// The limit named is the cloud's own in_use count, which on the rig
	// can drift from what exists.
	o.Message = strings.Replace(o.Message, fmt.Sprintf("(%d)", used("shares")), "(<in use>)", 1)
	if _, err := simple("extend over the gigabytes quota", "POST", action(sh), manilaMV, map[string]any{"extend": map[string]any{"new_size": 3}}); err != nil {
		return out, err
	}
	o = step("snapshot over the snapshots quota")
	if _, err := call(o, "POST", "/snapshots", manilaMV,
		map[string]any{"snapshot": map[string]any{"share_id": sh, "name": prefix + "q"}}); err != nil {
		return out, err
	}
	o.Message = strings.Replace(o.Message, fmt.Sprintf("(%d)", used("snapshots")), "(<in use>)", 1)
	if err := t.SetQuota(ctx, nil); err != nil {
		return out, err
	}
	quotaChanged = false
	return out, nil
}
