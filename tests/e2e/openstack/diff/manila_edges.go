package diff

import (
	"context"
	"fmt"
	"strings"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// runManilaEdges covers the answers a driver meets less often: calls on a
// share that is not ready, refused access rules, views at older
// microversions, paging, snapshot metadata, zones, share networks,
// scheduler hints and quota refusals. t.SetQuota changes the caller's
// Manila quota (an admin's call) and restores the defaults with nil.
func runManilaEdges(ctx context.Context, t ManilaTarget, logf func(string, ...any)) ([]Obs, error) {
	mr := newManilaRun(ctx, t, logf)
	return mr.run(mr.notReady, mr.refusedRules, mr.oldViews, mr.snapshotMetadata, mr.zonesNetworksHints, mr.listParameters, mr.quotaRefusals)
}

func shareAction(id string) string { return "/shares/" + id + "/action" }

// newShare creates a share for step o (recorded by call for cleanup).
func (mr *manilaRun) newShare(o *Obs, body map[string]any) (string, *rig.Response, error) {
	body["name"] = mr.prefix + "s"
	r, err := mr.call(o, "POST", "/shares", manilaMV, map[string]any{"share": body})
	if err != nil {
		return "", nil, err
	}
	return str(field(r, "share")["id"]), r, nil
}

// simpleR is a step of one call that returns the answer.
func (mr *manilaRun) simpleR(name, method, path, mv string, body any) (*rig.Response, error) {
	return mr.call(mr.step(name), method, path, mv, body)
}

// notReady: calls on a share that is still being made.
func (mr *manilaRun) notReady() error {
	ctx, m := mr.ctx, mr.m
	var (
		o   *Obs
		err error
	)
	o = mr.step("create, then allow access at once")
	mr.sh, _, err = mr.newShare(o, map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype"})
	if err != nil || mr.sh == "" {
		return err
	}
	if _, err := mr.simpleR("allow access while creating", "POST", shareAction(mr.sh), manilaMV,
		map[string]any{"allow_access": map[string]any{"access_type": "cephx", "access_to": "early", "access_level": "rw"}}); err != nil {
		return err
	}
	if _, err := mr.simpleR("delete while creating", "DELETE", "/shares/"+mr.sh, manilaMV, nil); err != nil {
		return err
	}
	o.States = mpoll(ctx, m, "/shares/"+mr.sh, "share", "status", nil, "available", "error")
	return nil
}

// refusedRules: refused access rules.
func (mr *manilaRun) refusedRules() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	for _, c := range []struct {
		name, mv string
		rule     map[string]any
	}{
		{"cephx id with a period", manilaMV, map[string]any{"access_type": "cephx", "access_to": "a.b", "access_level": "rw"}},
		{"unknown access type", manilaMV, map[string]any{"access_type": "xyz", "access_to": "a", "access_level": "rw"}},
		{"cephx before 2.13", "2.12", map[string]any{"access_type": "cephx", "access_to": "old", "access_level": "rw"}},
		{"rule metadata before 2.45", "2.44", map[string]any{"access_type": "cephx", "access_to": "meta", "access_level": "rw", "metadata": map[string]string{"k": "v"}}},
	} {
		if _, err := mr.simpleR(c.name, "POST", shareAction(mr.sh), c.mv, map[string]any{"allow_access": c.rule}); err != nil {
			return err
		}
	}
	if _, err := mr.simpleR("unknown action", "POST", shareAction(mr.sh), manilaMV, map[string]any{"frobnicate": nil}); err != nil {
		return err
	}
	if _, err := mr.simpleR("share-access-rules without share_id", "GET", "/share-access-rules", manilaMV, nil); err != nil {
		return err
	}
	o = mr.step("rule with metadata, then its metadata updated and read")
	r, err = mr.call(o, "POST", shareAction(mr.sh), manilaMV, map[string]any{"allow_access": map[string]any{"access_type": "cephx",
		"access_to": "diff-" + prefix[5:13] + "-m", "access_level": "ro", "metadata": map[string]string{"k": "v"}}})
	if err != nil {
		return err
	}
	rule := str(field(r, "access")["id"])
	mpoll(ctx, m, "/share-access-rules/"+rule, "access", "state", nil, "active", "error")
	if r, err = mr.call(o, "PUT", "/share-access-rules/"+rule+"/metadata", manilaMV, map[string]any{"metadata": map[string]string{"k2": "v2"}}); err != nil {
		return err
	}
	o.Extra = fmt.Sprint(r.JSON()["metadata"])
	if r, err = m.Do(ctx, "GET", "/share-access-rules/"+rule, manilaMV, nil); err == nil {
		o.Extra += fmt.Sprintf(" then %v", field(r, "access")["metadata"])
	}
	o = mr.step("access list at older microversions")
	var views []string
	for _, mv := range []string{"2.20", "2.27", "2.32"} {
		r, err := m.Do(ctx, "POST", shareAction(mr.sh), mv, map[string]any{"access_list": nil})
		if err != nil {
			return err
		}
		for _, a := range anyList(r.JSON()["access_list"]) {
			views = append(views, fmt.Sprintf("%s: %v %s", mv, a["state"], keysOf(a)))
		}
	}
	o.Extra = strings.Join(views, "; ")
	return nil
}

// oldViews: views at older microversions, update, export location by id.
func (mr *manilaRun) oldViews() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("share views at 2.0, 2.8, 2.44")
	var views []string
	for _, mv := range []string{"2.0", "2.8", "2.44"} {
		r, err := m.Do(ctx, "GET", "/shares/"+mr.sh, mv, nil)
		if err != nil {
			return err
		}
		s := field(r, "share")
		views = append(views, fmt.Sprintf("%s: share_type is id=%v %s", mv, len(str(s["share_type"])) == 36, keysOf(s)))
	}
	o.Extra = strings.Join(views, "; ")
	o = mr.step("share rename")
	if r, err = mr.call(o, "PUT", "/shares/"+mr.sh, manilaMV, map[string]any{"share": map[string]any{"display_name": prefix + "renamed"}}); err != nil {
		return err
	}
	o.Extra = strings.TrimPrefix(str(field(r, "share")["name"]), prefix)
	o = mr.step("export location by id")
	r, err = m.Do(ctx, "GET", "/shares/"+mr.sh+"/export_locations", manilaMV, nil)
	if err != nil {
		return err
	}
	if els := anyList(r.JSON()["export_locations"]); len(els) > 0 {
		if r, err = mr.call(o, "GET", "/shares/"+mr.sh+"/export_locations/"+str(els[0]["id"]), manilaMV, nil); err != nil {
			return err
		}
		o.Extra = keysOf(field(r, "export_location"))
	}
	if _, err := mr.simpleR("unknown export location", "GET", "/shares/"+mr.sh+"/export_locations/"+rig.NewUUID(), manilaMV, nil); err != nil {
		return err
	}
	return nil
}

// snapshotMetadata: snapshot metadata (2.73) and snapshot lists.
func (mr *manilaRun) snapshotMetadata() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	if _, err := mr.simpleR("snapshot with metadata at 2.72", "POST", "/snapshots", "2.72",
		map[string]any{"snapshot": map[string]any{"share_id": mr.sh, "name": prefix + "snap-old", "metadata": map[string]string{"k": "v"}}}); err != nil {
		return err
	}
	o = mr.step("snapshot with metadata at 2.73")
	if r, err = mr.call(o, "POST", "/snapshots", manilaMV, map[string]any{"snapshot": map[string]any{"share_id": mr.sh, "name": prefix + "snap", "metadata": map[string]string{"k": "v"}}}); err != nil {
		return err
	}
	if snap := str(field(r, "snapshot")["id"]); snap != "" {
		o.States = mpoll(ctx, m, "/snapshots/"+snap, "snapshot", "status", nil, "available", "error")
		if r, err := m.Do(ctx, "GET", "/snapshots/"+snap+"/metadata", manilaMV, nil); err == nil {
			o.Extra = fmt.Sprint(r.JSON()["metadata"])
		}
	}
	if err := mr.listStep("snapshots of the share", "snapshots", "GET", "/snapshots/detail?share_id="+mr.sh, manilaMV, nil); err != nil {
		return err
	}
	return nil
}

// zonesNetworksHints: zones, share networks, scheduler hints.
func (mr *manilaRun) zonesNetworksHints() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("create in zone nova")
	if _, r, err = mr.newShare(o, map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "availability_zone": "nova"}); err != nil {
		return err
	}
	o.Extra = fmt.Sprintf("az=%v", field(r, "share")["availability_zone"])
	if _, err := mr.simpleR("create in an unknown zone", "POST", "/shares", manilaMV,
		map[string]any{"share": map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "availability_zone": "no-such-zone", "name": prefix + "z"}}); err != nil {
		return err
	}
	o = mr.step("share network create")
	if r, err = mr.call(o, "POST", "/share-networks", manilaMV, map[string]any{"share_network": map[string]any{"name": prefix + "net"}}); err != nil {
		return err
	}
	if net := str(field(r, "share_network")["id"]); net != "" {
		o.Extra = keysOf(field(r, "share_network"))
		o2 := mr.step("share with a network on a type without share servers")
		netShare, r, err := mr.newShare(o2, map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype", "share_network_id": net})
		if err != nil {
			return err
		}
		if netShare != "" {
			o2.States = mpoll(ctx, m, "/shares/"+netShare, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
			o3 := mr.step("delete of that share")
			if _, err := mr.call(o3, "DELETE", "/shares/"+netShare, manilaMV, nil); err != nil {
				return err
			}
			o3.States = mpollGone(ctx, m, "/shares/"+netShare, "share", "status")
			o4 := mr.step("user messages of that share")
			if r, err = mr.call(o4, "GET", "/messages?resource_id="+netShare+"&sort_key=created_at&sort_dir=asc", manilaMV, nil); err != nil {
				return err
			}
			var msgs []string
			for _, msg := range anyList(r.JSON()["messages"]) {
				msgs = append(msgs, fmt.Sprintf("%v/%v %v", msg["action_id"], msg["detail_id"], msg["user_message"]))
			}
			o4.Extra = strings.Join(msgs, "; ")
		}
	}
	o = mr.step("share with a same_host hint (2.65)")
	var hinted string
	if hinted, r, err = mr.newShare(o, map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype",
		"scheduler_hints": map[string]any{"same_host": mr.sh}}); err != nil {
		return err
	}
	if hinted != "" {
		o.States = mpoll(ctx, m, "/shares/"+hinted, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
	}
	return nil
}

// listParameters: hints naming an unknown share, list parameters, a create without a size.
func (mr *manilaRun) listParameters() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	if _, err := mr.simpleR("same_host hint naming an unknown share", "POST", "/shares", manilaMV, map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "h", "scheduler_hints": map[string]any{"same_host": rig.NewUUID()}}}); err != nil {
		return err
	}
	o = mr.step("the same hint below 2.65")
	if r, err = mr.call(o, "POST", "/shares", "2.64", map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "h", "scheduler_hints": map[string]any{"same_host": rig.NewUUID()}}}); err != nil {
		return err
	}
	if id := str(field(r, "share")["id"]); id != "" {
		o.States = mpoll(ctx, m, "/shares/"+id, "share", "status", []string{str(field(r, "share")["status"])}, "available", "error")
	}
	if _, err := mr.simpleR("list with an unknown sort key", "GET", "/shares/detail?sort_key=bogus", manilaMV, nil); err != nil {
		return err
	}
	if _, err := mr.simpleR("list with a bad limit", "GET", "/shares/detail?limit=abc", manilaMV, nil); err != nil {
		return err
	}
	o = mr.step("list from an unknown marker")
	if r, err = mr.call(o, "GET", "/shares?marker="+rig.NewUUID(), manilaMV, nil); err != nil {
		return err
	}
	o.Extra = fmt.Sprintf("non-empty=%v", len(anyList(r.JSON()["shares"])) > 0)
	if _, err := mr.simpleR("create without a size", "POST", "/shares", manilaMV, map[string]any{"share": map[string]any{
		"share_proto": "CEPHFS", "share_type": "cephfstype", "name": prefix + "nosize"}}); err != nil {
		return err
	}
	return nil
}

// quotaRefusals: quota refusals: shares and gigabytes just above what is used.
func (mr *manilaRun) quotaRefusals() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	if mr.t.SetQuota == nil {
		return nil
	}
	o = mr.step("quota lowered")
	r, err = m.Do(ctx, "GET", "/quota-sets/"+m.ProjectID+"/detail", manilaMV, nil)
	if err != nil {
		return err
	}
	qset := field(r, "quota_set")
	used := func(k string) int { v, _ := qset[k].(map[string]any); return int(num(v["in_use"])) }
	if err := mr.t.SetQuota(ctx, map[string]int{"shares": used("shares"), "gigabytes": used("gigabytes") + 1, "snapshots": used("snapshots")}); err != nil {
		return err
	}
	mr.quotaChanged = true
	o.Extra = "shares and snapshots at their use, gigabytes one above"
	o = mr.step("create over the shares quota")
	if _, err := mr.call(o, "POST", "/shares", manilaMV,
		map[string]any{"share": map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype", "name": prefix + "q"}}); err != nil {
		return err
	}
	// The limit named is the cloud's own in_use count, which on the rig
	// can drift from what exists.
	o.Message = strings.Replace(o.Message, fmt.Sprintf("(%d)", used("shares")), "(<in use>)", 1)
	if _, err := mr.simpleR("extend over the gigabytes quota", "POST", shareAction(mr.sh), manilaMV, map[string]any{"extend": map[string]any{"new_size": 3}}); err != nil {
		return err
	}
	o = mr.step("snapshot over the snapshots quota")
	if _, err := mr.call(o, "POST", "/snapshots", manilaMV,
		map[string]any{"snapshot": map[string]any{"share_id": mr.sh, "name": prefix + "q"}}); err != nil {
		return err
	}
	o.Message = strings.Replace(o.Message, fmt.Sprintf("(%d)", used("snapshots")), "(<in use>)", 1)
	if err := mr.t.SetQuota(ctx, nil); err != nil {
		return err
	}
	mr.quotaChanged = false
	return nil
}
