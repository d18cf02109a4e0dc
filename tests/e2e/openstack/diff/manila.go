package diff

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// ManilaTarget is one cloud for the Manila scenario. Both have the rig's
// share types: cephfstype (native CephFS, cephx rules) and cephfsnfstype
// (CephFS through NFS-Ganesha, ip rules).
type ManilaTarget struct {
	Name string
	M    *ManilaClient
	// OtherProjectID is a project the caller is not in (for the
	// "another project's id in the URL" step).
	OtherProjectID string
	// ForceDelete removes a share whatever its status (an admin's
	// force_delete): cleanup of a share stuck in error_deleting.
	ForceDelete func(ctx context.Context, shareID string) error
	// SetQuota sets the caller's Manila quota (shares, gigabytes,
	// snapshots), as an admin does; nil restores the defaults.
	SetQuota func(ctx context.Context, q map[string]int) error
}

// manilaMV is the microversion the scenario speaks unless a step says.
const manilaMV = "2.73"

// manilaPoll is the 0.1 s polling of the rig's manila_api_timings.py: the
// rig's transitional states last 0.1-1 s.
const manilaPoll = 100 * time.Millisecond

var exportPathPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// keysOf lists a JSON object's keys, sorted: the body shape compared.
func keysOf(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// runManila exercises what the Manila driver leans on, on one cloud, and
// deletes everything it made before it returns.
func runManila(ctx context.Context, t ManilaTarget, logf func(string, ...any)) ([]Obs, error) {
	mr := newManilaRun(ctx, t, logf)
	return mr.run(mr.surface, mr.shareTypes, mr.createRefusals, mr.nfsShare, mr.cephfsShare, mr.snapshotsAndSizes,
		mr.metadata, mr.lookups, mr.teardown)
}

// surface: versions and microversions.
func (mr *manilaRun) surface() error {
	m := mr.m
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("version list")
	r, err = mr.call(o, "GET", m.Root()+"/", "", nil)
	if err != nil {
		return err
	}
	if vs, _ := r.JSON()["versions"].([]any); len(vs) > 0 {
		var facts []string
		for _, v := range vs {
			vm, _ := v.(map[string]any)
			facts = append(facts, fmt.Sprintf("%v %v %v-%v", vm["id"], vm["status"], vm["min_version"], vm["version"]))
		}
		o.Extra = strings.Join(facts, "; ")
	}
	for _, mv := range []string{"", "2.74", "1.9", "abc", "latest"} {
		o := mr.step("microversion " + map[bool]string{true: "absent", false: mv}[mv == ""])
		r, err := mr.call(o, "GET", "/shares", mv, nil)
		if err != nil {
			return err
		}
		o.Extra = "echo " + r.Header.Get("X-OpenStack-Manila-API-Version")
	}
	return nil
}

// shareTypes: share types as a member sees them.
func (mr *manilaRun) shareTypes() error {
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("share types")
	if r, err = mr.call(o, "GET", "/types", manilaMV, nil); err != nil {
		return err
	}
	var typeFacts []string
	for _, ty := range anyList(r.JSON()["share_types"]) {
		specs, _ := ty["extra_specs"].(map[string]any)
		typeFacts = append(typeFacts, fmt.Sprintf("%v default=%v specs=%v keys=%s", ty["name"], ty["is_default"], specs, keysOf(ty)))
	}
	sort.Strings(typeFacts)
	o.Extra = strings.Join(typeFacts, "; ")
	o = mr.step("default share type")
	if r, err = mr.call(o, "GET", "/types/default", manilaMV, nil); err != nil {
		return err
	}
	o.Extra = fmt.Sprint(field(r, "share_type")["name"])
	if err := mr.simple("share type by name", "GET", "/types/cephfstype", manilaMV, nil); err != nil {
		return err
	}
	if err := mr.simple("share type extra specs as a member", "GET", "/types/"+typeID(r)+"/extra_specs", manilaMV, nil); err != nil {
		return err
	}
	return nil
}

// createRefusals: create refusals.
func (mr *manilaRun) createRefusals() error {
	prefix := mr.prefix
	for _, c := range []struct {
		name string
		body map[string]any
	}{
		{"create with an unknown type", map[string]any{"share_proto": "NFS", "size": 1, "share_type": "no-such-type-e2e"}},
		{"create with a protocol not enabled", map[string]any{"share_proto": "GLUSTERFS", "size": 1, "share_type": "cephfsnfstype"}},
		{"create of size 0", map[string]any{"share_proto": "NFS", "size": 0, "share_type": "cephfsnfstype"}},
		{"create over the gigabytes quota", map[string]any{"share_proto": "NFS", "size": 5000, "share_type": "cephfsnfstype"}},
	} {
		body := c.body
		body["name"] = prefix + "refused"
		if _, err := mr.call(mr.step(c.name), "POST", "/shares", manilaMV, map[string]any{"share": body}); err != nil {
			return err
		}
	}
	return nil
}

// nfsShare: an NFS share (CephFS through NFS-Ganesha) and its ip rules.
func (mr *manilaRun) nfsShare() error {
	prefix := mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	mr.nfs, err = mr.createShare("NFS share create", map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfsnfstype",
		"metadata": map[string]string{"manila.csi.openstack.org/cluster": "diff"}}, "available", "error")
	if err != nil || mr.nfs == "" {
		return err
	}
	if err := mr.shareFacts("NFS share get", mr.nfs); err != nil {
		return err
	}
	o = mr.step("NFS export locations")
	if r, err = mr.call(o, "GET", "/shares/"+mr.nfs+"/export_locations", manilaMV, nil); err != nil {
		return err
	}
	o.Extra = exportFacts(r)
	if err := mr.listStep("list by name", "shares", "GET", "/shares?name="+prefix+"NFS-share-create", manilaMV, nil); err != nil {
		return err
	}
	if err := mr.listStep("detail list by metadata", "shares", "GET", "/shares/detail?metadata=%7B%27manila.csi.openstack.org%2Fcluster%27%3A%27diff%27%7D", manilaMV, nil); err != nil {
		return err
	}
	o = mr.step("detail list, one per page")
	if r, err = mr.call(o, "GET", "/shares/detail?limit=1", manilaMV, nil); err != nil {
		return err
	}
	o.Extra = fmt.Sprintf("%d, next link %v", len(anyList(r.JSON()["shares"])), r.JSON()["shares_links"] != nil)
	mr.ipRule, err = mr.allow("ip rule on NFS", mr.nfs, "ip", "10.0.0.5")
	if err != nil {
		return err
	}
	if err := mr.shareFacts("NFS share after the rule", mr.nfs); err != nil {
		return err
	}
	for _, c := range []struct{ name, typ, to, level string }{
		{"duplicate ip rule", "ip", "10.0.0.5", "rw"},
		{"ip rule with a bad network", "ip", "10.0.0.0/33", "rw"},
		{"ip rule with a bad level", "ip", "10.0.0.6", "xx"},
	} {
		if err := mr.simple(c.name, "POST", "/shares/"+mr.nfs+"/action", manilaMV,
			map[string]any{"allow_access": map[string]any{"access_type": c.typ, "access_to": c.to, "access_level": c.level}}); err != nil {
			return err
		}
	}
	if err := mr.listStep("share-access-rules list", "access_list", "GET", "/share-access-rules?share_id="+mr.nfs, manilaMV, nil); err != nil {
		return err
	}
	if err := mr.simple("share-access-rules at 2.44", "GET", "/share-access-rules/"+mr.ipRule, "2.44", nil); err != nil {
		return err
	}
	if err := mr.listStep("access_list action at 2.44", "access_list", "POST", "/shares/"+mr.nfs+"/action", "2.44", map[string]any{"access_list": nil}); err != nil {
		return err
	}
	if err := mr.simple("access_list action at 2.45", "POST", "/shares/"+mr.nfs+"/action", "2.45", map[string]any{"access_list": nil}); err != nil {
		return err
	}
	if _, err := mr.allow("cephx rule on NFS", mr.nfs, "cephx", "diff-nfs-user"); err != nil {
		return err
	}
	if err := mr.shareFacts("NFS share after the failed rule", mr.nfs); err != nil {
		return err
	}
	return nil
}

// cephfsShare: a CephFS share and its cephx rule.
func (mr *manilaRun) cephfsShare() error {
	prefix := mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	mr.ceph, err = mr.createShare("CephFS share create", map[string]any{"share_proto": "CEPHFS", "size": 1, "share_type": "cephfstype"}, "available", "error")
	if err != nil || mr.ceph == "" {
		return err
	}
	o = mr.step("CephFS export locations")
	if r, err = mr.call(o, "GET", "/shares/"+mr.ceph+"/export_locations", manilaMV, nil); err != nil {
		return err
	}
	o.Extra = exportFacts(r)
	mr.cephxRule, err = mr.allow("cephx rule on CephFS", mr.ceph, "cephx", "diff-"+prefix[5:13])
	if err != nil {
		return err
	}
	if _, err := mr.allow("ip rule on CephFS", mr.ceph, "ip", "10.0.0.7"); err != nil {
		return err
	}
	if err := mr.shareFacts("CephFS share after the failed rule", mr.ceph); err != nil {
		return err
	}
	o = mr.step("user messages of the CephFS share")
	if r, err = mr.call(o, "GET", "/messages?resource_id="+mr.ceph, manilaMV, nil); err != nil {
		return err
	}
	var msgs []string
	for _, msg := range anyList(r.JSON()["messages"]) {
		msgs = append(msgs, fmt.Sprintf("%v/%v %v %v keys=%s", msg["action_id"], msg["detail_id"], msg["resource_type"], msg["user_message"], keysOf(msg)))
	}
	o.Extra = strings.Join(msgs, "; ")
	return nil
}

// snapshotsAndSizes: snapshots, extend, shrink, restore.
func (mr *manilaRun) snapshotsAndSizes() error {
	ctx, m, prefix := mr.ctx, mr.m, mr.prefix
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("snapshot create")
	if r, err = mr.call(o, "POST", "/snapshots", manilaMV, map[string]any{"snapshot": map[string]any{"share_id": mr.ceph, "name": prefix + "snap"}}); err != nil {
		return err
	}
	mr.snap = str(field(r, "snapshot")["id"])
	if mr.snap == "" {
		return fmt.Errorf("snapshot create: %d %s", r.Status, r.Body)
	}
	o.Extra = "keys=" + keysOf(field(r, "snapshot"))
	o.States = mpoll(ctx, m, "/snapshots/"+mr.snap, "snapshot", "status", []string{str(field(r, "snapshot")["status"])}, "available", "error")
	if err := mr.simple("delete of a share with a snapshot", "DELETE", "/shares/"+mr.ceph, manilaMV, nil); err != nil {
		return err
	}
	o = mr.step("extend")
	if _, err = mr.call(o, "POST", "/shares/"+mr.ceph+"/action", manilaMV, map[string]any{"extend": map[string]any{"new_size": 2}}); err != nil {
		return err
	}
	o.States = mpoll(ctx, m, "/shares/"+mr.ceph, "share", "status", nil, "available", "extending_error", "error")
	if err := mr.simple("extend to the same size", "POST", "/shares/"+mr.ceph+"/action", manilaMV, map[string]any{"extend": map[string]any{"new_size": 2}}); err != nil {
		return err
	}
	if err := mr.simple("shrink to a bigger size", "POST", "/shares/"+mr.ceph+"/action", manilaMV, map[string]any{"shrink": map[string]any{"new_size": 5}}); err != nil {
		return err
	}
	o = mr.step("shrink")
	if _, err = mr.call(o, "POST", "/shares/"+mr.ceph+"/action", manilaMV, map[string]any{"shrink": map[string]any{"new_size": 1}}); err != nil {
		return err
	}
	o.States = mpoll(ctx, m, "/shares/"+mr.ceph, "share", "status", nil, "available", "shrinking_error", "error")
	if _, err := mr.createShare("share from the snapshot", map[string]any{"share_proto": "CEPHFS", "size": 1, "snapshot_id": mr.snap},
		"available", "error"); err != nil {
		return err
	}
	if err := mr.simple("share from an unknown snapshot", "POST", "/shares", manilaMV,
		map[string]any{"share": map[string]any{"share_proto": "CEPHFS", "size": 1, "snapshot_id": rig.NewUUID(), "name": prefix + "nosnap"}}); err != nil {
		return err
	}
	wrong, err := mr.createShare("NFS share of the CephFS type", map[string]any{"share_proto": "NFS", "size": 1, "share_type": "cephfstype"}, "available", "error")
	if err != nil {
		return err
	}
	o = mr.step("user messages of the unschedulable share")
	if r, err = mr.call(o, "GET", "/messages?resource_id="+wrong, manilaMV, nil); err != nil {
		return err
	}
	var msgs []string
	for _, msg := range anyList(r.JSON()["messages"]) {
		msgs = append(msgs, fmt.Sprintf("%v/%v %v", msg["action_id"], msg["detail_id"], msg["user_message"]))
	}
	o.Extra = strings.Join(msgs, "; ")
	return nil
}

// metadata: metadata.
func (mr *manilaRun) metadata() error {
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	o = mr.step("metadata set")
	if r, err = mr.call(o, "POST", "/shares/"+mr.ceph+"/metadata", manilaMV, map[string]any{"metadata": map[string]string{"a": "1"}}); err != nil {
		return err
	}
	o.Extra = fmt.Sprint(r.JSON()["metadata"])
	o = mr.step("metadata merge")
	if r, err = mr.call(o, "POST", "/shares/"+mr.ceph+"/metadata", manilaMV, map[string]any{"metadata": map[string]string{"b": "2"}}); err != nil {
		return err
	}
	o.Extra = fmt.Sprint(r.JSON()["metadata"])
	o = mr.step("metadata replace")
	if r, err = mr.call(o, "PUT", "/shares/"+mr.ceph+"/metadata", manilaMV, map[string]any{"metadata": map[string]string{"c": "3"}}); err != nil {
		return err
	}
	o.Extra = fmt.Sprint(r.JSON()["metadata"])
	if err := mr.simple("metadata key delete", "DELETE", "/shares/"+mr.ceph+"/metadata/c", manilaMV, nil); err != nil {
		return err
	}
	if err := mr.simple("metadata unknown key", "GET", "/shares/"+mr.ceph+"/metadata/nope", manilaMV, nil); err != nil {
		return err
	}
	return nil
}

// lookups: not-found answers, zones, quotas, URL forms.
func (mr *manilaRun) lookups() error {
	m := mr.m
	var (
		o   *Obs
		err error
		r   *rig.Response
	)
	for _, c := range []struct{ name, path string }{
		{"unknown share", "/shares/" + rig.NewUUID()},
		{"unknown snapshot", "/snapshots/" + rig.NewUUID()},
		{"unknown access rule", "/share-access-rules/" + rig.NewUUID()},
		{"unknown message", "/messages/" + rig.NewUUID()},
		{"unknown share network", "/share-networks/" + rig.NewUUID()},
	} {
		if err := mr.simple(c.name, "GET", c.path, manilaMV, nil); err != nil {
			return err
		}
	}
	if err := mr.simple("deny of an unknown rule", "POST", "/shares/"+mr.ceph+"/action", manilaMV,
		map[string]any{"deny_access": map[string]any{"access_id": rig.NewUUID()}}); err != nil {
		return err
	}
	if err := mr.listStep("availability-zones", "availability_zones", "GET", "/availability-zones", manilaMV, nil); err != nil {
		return err
	}
	if err := mr.simple("os-availability-zone at 2.73", "GET", "/os-availability-zone", manilaMV, nil); err != nil {
		return err
	}
	if err := mr.listStep("os-availability-zone at 2.6", "availability_zones", "GET", "/os-availability-zone", "2.6", nil); err != nil {
		return err
	}
	o = mr.step("limits")
	if r, err = mr.call(o, "GET", "/limits", manilaMV, nil); err != nil {
		return err
	}
	lim, _ := field(r, "limits")["absolute"].(map[string]any)
	o.Extra = keysOf(lim)
	o = mr.step("quota set detail")
	if r, err = mr.call(o, "GET", "/quota-sets/"+m.ProjectID+"/detail", manilaMV, nil); err != nil {
		return err
	}
	qs := field(r, "quota_set")
	// Not the in_use figures: the rig's drift from what exists (seen: 2
	// more shares in use than listed after force-deleted shares).
	o.Extra = keysOf(qs)
	if err := mr.listStep("share networks", "share_networks", "GET", "/share-networks/detail", manilaMV, nil); err != nil {
		return err
	}
	base := strings.TrimSuffix(m.Share, "/"+m.ProjectID)
	if err := mr.simple("URL without the project id", "GET", base+"/shares/"+mr.ceph, "2.60", nil); err != nil {
		return err
	}
	if err := mr.simple("URL with another project's id", "GET", base+"/"+mr.t.OtherProjectID+"/shares/"+mr.ceph, "2.60", nil); err != nil {
		return err
	}
	return nil
}

// teardown: deny, deletes.
func (mr *manilaRun) teardown() error {
	ctx, m := mr.ctx, mr.m
	var (
		o *Obs
	)
	for _, c := range []struct{ name, share, rule string }{{"deny the ip rule", mr.nfs, mr.ipRule}, {"deny the cephx rule", mr.ceph, mr.cephxRule}} {
		o := mr.step(c.name)
		if _, err := mr.call(o, "POST", "/shares/"+c.share+"/action", manilaMV, map[string]any{"deny_access": map[string]any{"access_id": c.rule}}); err != nil {
			return err
		}
		o.States = mpollGone(ctx, m, "/share-access-rules/"+c.rule, "access", "state")
	}
	o = mr.step("snapshot delete")
	if _, err := mr.call(o, "DELETE", "/snapshots/"+mr.snap, manilaMV, nil); err != nil {
		return err
	}
	o.States = mpollGone(ctx, m, "/snapshots/"+mr.snap, "snapshot", "status")
	o = mr.step("share delete")
	if _, err := mr.call(o, "DELETE", "/shares/"+mr.nfs, manilaMV, nil); err != nil {
		return err
	}
	o.States = mpollGone(ctx, m, "/shares/"+mr.nfs, "share", "status")
	if err := mr.simple("get of the deleted share", "GET", "/shares/"+mr.nfs, manilaMV, nil); err != nil {
		return err
	}
	return nil
}

func typeID(r *rig.Response) string { return str(field(r, "share_type")["id"]) }

func anyList(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// listFacts is a list's length and its items' keys.
func listFacts(r *rig.Response, key string) string {
	items := anyList(r.JSON()[key])
	shapes := map[string]bool{}
	for _, it := range items {
		shapes[keysOf(it)] = true
	}
	var ss []string
	for s := range shapes {
		ss = append(ss, s)
	}
	sort.Strings(ss)
	return fmt.Sprintf("%d item(s) keys=%s", len(items), strings.Join(ss, " | "))
}

// exportFacts is the export locations' keys, preferred flags and paths
// with the uuids replaced.
func exportFacts(r *rig.Response) string {
	var facts []string
	for _, el := range anyList(r.JSON()["export_locations"]) {
		facts = append(facts, fmt.Sprintf("%s preferred=%v keys=%s", exportPathPattern.ReplaceAllString(str(el["path"]), "<uuid>"), el["preferred"], keysOf(el)))
	}
	return strings.Join(facts, "; ")
}

// mpoll reads path every manilaPoll until the object's field is one of
// final and returns the values it saw (starting with seen).
func mpoll(ctx context.Context, m *ManilaClient, path, key, fieldName string, seen []string, final ...string) []string {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := m.Do(ctx, "GET", path, manilaMV, nil)
		if err != nil || r.Status != 200 {
			return append(seen, "?")
		}
		s := str(field(r, key)[fieldName])
		seen = appendState(seen, s)
		if slices.Contains(final, s) {
			return seen
		}
		time.Sleep(manilaPoll)
	}
	return append(seen, "timeout")
}

// mpollSettled is mpoll until the field is anything but transitional.
func mpollSettled(ctx context.Context, m *ManilaClient, path, key, fieldName, transitional string) []string {
	deadline := time.Now().Add(time.Minute)
	var seen []string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := m.Do(ctx, "GET", path, manilaMV, nil)
		if err != nil || r.Status != 200 {
			return append(seen, "?")
		}
		s := str(field(r, key)[fieldName])
		seen = appendState(seen, s)
		if s != transitional {
			return seen
		}
		time.Sleep(manilaPoll)
	}
	return append(seen, "timeout")
}

// mpollGone is mpoll until path answers 404 ("gone") or the object is
// stuck in error_deleting.
func mpollGone(ctx context.Context, m *ManilaClient, path, key, fieldName string) []string {
	var seen []string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := m.Do(ctx, "GET", path, manilaMV, nil)
		if err != nil {
			return append(seen, "?")
		}
		if r.Status == 404 {
			return appendState(seen, "gone")
		}
		s := str(field(r, key)[fieldName])
		seen = appendState(seen, s)
		if s == "error_deleting" {
			return seen
		}
		time.Sleep(manilaPoll)
	}
	return append(seen, "timeout")
}
