// Package diff runs one scripted sequence of raw Cinder and Nova calls
// against the emulator and against the real cloud of the openstack-rig, and
// compares status codes, error bodies and the state sequences the
// resources go through. It is what keeps the emulator honest.
package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// Target is one cloud to run the scenario on.
type Target struct {
	Name    string
	Client  *rig.Client
	Admin   *rig.Client // changes the quota of Client's project
	Server1 string      // a server volumes attach to
	Server2 string      // another server, for the second attach
}

// Obs is what one step observed.
type Obs struct {
	Step    string
	Status  int
	ErrKey  string   // top-level key of an error body ("badRequest", ...)
	Message string   // the error message, ids replaced by <id>
	States  []string // statuses seen while polling, consecutive repeats dropped
	Extra   string   // step-specific facts (list counts, sizes)
}

func (o Obs) String() string {
	s := fmt.Sprintf("%d", o.Status)
	if o.ErrKey != "" {
		s += " " + o.ErrKey + ": " + o.Message
	}
	if len(o.States) > 0 {
		s += " states " + strings.Join(o.States, "→")
	}
	if o.Extra != "" {
		s += " [" + o.Extra + "]"
	}
	return s
}

var idPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b`)

// errorOf fills ErrKey and Message from an OpenStack error body.
func errorOf(o *Obs, r *rig.Response) {
	o.Status = r.Status
	if r.Status < 400 {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(r.Body, &m) != nil {
		o.ErrKey = "(not json)"
		o.Message = normalize(string(r.Body))
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o.ErrKey = strings.Join(keys, ",")
	for _, k := range keys {
		var inner struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(m[k], &inner) == nil && inner.Message != "" {
			o.Message = normalize(inner.Message)
			return
		}
	}
}

// runPrefix matches the random part of the names a run gives what it
// creates, so the two clouds' messages compare.
var runPrefix = regexp.MustCompile(`diff-[0-9a-f]{8}-`)

func normalize(s string) string {
	s = idPattern.ReplaceAllString(s, "<id>")
	s = runPrefix.ReplaceAllString(s, "diff-<run>-")
	return strings.TrimSpace(s)
}

// run executes the scenario on t and returns the observations in order.
// Everything it creates is deleted before it returns, also on failure.
func run(ctx context.Context, t Target, logf func(string, ...any)) (out []Obs, err error) {
	c := t.Client
	prefix := "diff-" + rig.NewUUID()[:8] + "-"
	var volumes, snapshots, types []string
	attached := map[string]string{} // volume -> server
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for v, s := range attached {
			_, _ = c.Do(cctx, rig.Compute, "DELETE", "/servers/"+s+"/os-volume_attachments/"+v, "2.79", nil)
			waitStatus(cctx, c, "volumes", v, "available")
		}
		for _, s := range snapshots {
			_, _ = c.Do(cctx, rig.Volume, "DELETE", "/snapshots/"+s, "3.0", nil)
			waitGone(cctx, c, "snapshots", s)
		}
		for _, v := range volumes {
			_, _ = c.Do(cctx, rig.Volume, "DELETE", "/volumes/"+v, "3.0", nil)
			waitGone(cctx, c, "volumes", v)
		}
		for _, id := range types {
			_, _ = t.Admin.Do(cctx, rig.Volume, "DELETE", "/types/"+id, "3.0", nil)
		}
	}()
	step := func(name string) *Obs {
		out = append(out, Obs{Step: name})
		return &out[len(out)-1]
	}
	call := func(o *Obs, svc rig.Service, method, path, mv string, body any) (*rig.Response, error) {
		r, err := c.Do(ctx, svc, method, path, mv, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Step, err)
		}
		errorOf(o, r)
		logf("%s %s: %s %s → %d %s", t.Name, o.Step, method, path, r.Status, truncate(string(r.Body), 300))
		return r, nil
	}
	createType := func(o *Obs, name string, specs map[string]string) (string, error) {
		body := map[string]any{"name": name}
		if specs != nil {
			body["extra_specs"] = specs
		}
		r, err := t.Admin.Do(ctx, rig.Volume, "POST", "/types", "3.0", map[string]any{"volume_type": body})
		if err != nil {
			return "", fmt.Errorf("%s: %w", o.Step, err)
		}
		errorOf(o, r)
		if r.Status != 200 {
			return "", fmt.Errorf("%s: %d %s", o.Step, r.Status, r.Body)
		}
		types = append(types, str(field(r, "volume_type")["id"]))
		return name, nil
	}
	createVolume := func(name string, size int) (string, error) {
		o := step("volume create " + name)
		r, err := call(o, rig.Volume, "POST", "/volumes", "3.0", map[string]any{"volume": map[string]any{"size": size, "name": prefix + name}})
		if err != nil {
			return "", err
		}
		if r.Status != 202 {
			return "", fmt.Errorf("volume create: %d %s", r.Status, r.Body)
		}
		v := field(r, "volume")
		id, _ := v["id"].(string)
		volumes = append(volumes, id)
		o.States = append(o.States, str(v["status"]))
		o.States = poll(ctx, c, "volumes", id, o.States, "available", "error")
		return id, nil
	}

	// 1. volume create and its states.
	a, err := createVolume("a", 1)
	if err != nil {
		return out, err
	}

	// 2. create with an unknown volume type.
	if _, err := call(step("create with unknown type"), rig.Volume, "POST", "/volumes", "3.0",
		map[string]any{"volume": map[string]any{"size": 1, "name": prefix + "badtype", "volume_type": "no-such-type-e2e"}}); err != nil {
		return out, err
	}

	// 3. attach to a missing server.
	if _, err := call(step("attach to a missing server"), rig.Compute, "POST", "/servers/"+rig.NewUUID()+"/os-volume_attachments", "2.79",
		map[string]any{"volumeAttachment": map[string]any{"volumeId": a}}); err != nil {
		return out, err
	}

	// 4. attach through Nova and the volume's states.
	o := step("attach to server 1")
	r, err := call(o, rig.Compute, "POST", "/servers/"+t.Server1+"/os-volume_attachments", "2.79",
		map[string]any{"volumeAttachment": map[string]any{"volumeId": a}})
	if err != nil {
		return out, err
	}
	if r.Status != 200 {
		return out, fmt.Errorf("attach: %d %s", r.Status, r.Body)
	}
	attached[a] = t.Server1
	o.Extra = "device " + str(field(r, "volumeAttachment")["device"])
	o.States = poll(ctx, c, "volumes", a, nil, "in-use", "error", "available")

	// 5. a second attach of a non-multiattach volume, to another server
	// and to the same one.
	if _, err := call(step("second attach to server 2"), rig.Compute, "POST", "/servers/"+t.Server2+"/os-volume_attachments", "2.79",
		map[string]any{"volumeAttachment": map[string]any{"volumeId": a}}); err != nil {
		return out, err
	}
	if _, err := call(step("second attach to server 1"), rig.Compute, "POST", "/servers/"+t.Server1+"/os-volume_attachments", "2.79",
		map[string]any{"volumeAttachment": map[string]any{"volumeId": a}}); err != nil {
		return out, err
	}

	// 6. extend in-use below 3.42, then at 3.42.
	if _, err := call(step("extend in-use at 3.0"), rig.Volume, "POST", "/volumes/"+a+"/action", "3.0",
		map[string]any{"os-extend": map[string]any{"new_size": 2}}); err != nil {
		return out, err
	}
	o = step("extend in-use at 3.42")
	if _, err := call(o, rig.Volume, "POST", "/volumes/"+a+"/action", "3.42",
		map[string]any{"os-extend": map[string]any{"new_size": 2}}); err != nil {
		return out, err
	}
	o.States = pollUntil(ctx, c, "volumes", a, nil, func(v map[string]any) bool {
		return str(v["status"]) == "in-use" && num(v["size"]) == 2 || strings.HasPrefix(str(v["status"]), "error")
	})

	// 7. delete of an attached volume.
	if _, err := call(step("delete attached volume"), rig.Volume, "DELETE", "/volumes/"+a, "3.0", nil); err != nil {
		return out, err
	}

	// 8. snapshot of an in-use volume without force.
	if _, err := call(step("snapshot in-use without force at 3.0"), rig.Volume, "POST", "/snapshots", "3.0",
		map[string]any{"snapshot": map[string]any{"volume_id": a, "name": prefix + "snap-inuse"}}); err != nil {
		return out, err
	}

	// 9. detach and its states.
	o = step("detach from server 1")
	if _, err := call(o, rig.Compute, "DELETE", "/servers/"+t.Server1+"/os-volume_attachments/"+a, "2.79", nil); err != nil {
		return out, err
	}
	o.States = poll(ctx, c, "volumes", a, nil, "available", "error")
	delete(attached, a)

	// 10. delete of a volume with snapshots.
	o = step("snapshot create")
	r, err = call(o, rig.Volume, "POST", "/snapshots", "3.0",
		map[string]any{"snapshot": map[string]any{"volume_id": a, "name": prefix + "snap"}})
	if err != nil {
		return out, err
	}
	if r.Status != 202 {
		return out, fmt.Errorf("snapshot create: %d %s", r.Status, r.Body)
	}
	snap := str(field(r, "snapshot")["id"])
	snapshots = append(snapshots, snap)
	o.States = poll(ctx, c, "snapshots", snap, []string{str(field(r, "snapshot")["status"])}, "available", "error")
	if _, err := call(step("delete volume with snapshots"), rig.Volume, "DELETE", "/volumes/"+a, "3.0", nil); err != nil {
		return out, err
	}

	// 11. a bad marker.
	if _, err := call(step("list with an unknown marker"), rig.Volume, "GET", "/volumes?marker="+rig.NewUUID(), "3.0", nil); err != nil {
		return out, err
	}

	// 12. name filtering by microversion.
	if _, err := createVolume("b", 1); err != nil {
		return out, err
	}
	for _, f := range []struct{ name, query, mv string }{
		{"list name= at 3.0", "name=" + prefix + "a", "3.0"},
		{"list name~ at 3.0", "name~=" + prefix + "a", "3.0"},
		{"list name~ at 3.33", "name~=" + prefix + "a", "3.33"},
		{"list name~ at 3.34", "name~=" + prefix + "a", "3.34"},
		{"list unknown filter at 3.30", "nosuchfilter=x", "3.30"},
		{"list unknown filter at 3.31", "nosuchfilter=x", "3.31"},
	} {
		o := step(f.name)
		r, err := call(o, rig.Volume, "GET", "/volumes/detail?"+f.query, f.mv, nil)
		if err != nil {
			return out, err
		}
		if r.Status == 200 {
			o.Extra = "ours listed: " + strings.Join(ours(r, prefix), ",")
		}
	}

	// 12b. retype (ControllerModifyVolume): refusals, a retype on the
	// same backend, and one to a type whose backend the scheduler cannot
	// use under migration_policy never (Cinder reverts it silently).
	bID := volumes[len(volumes)-1]
	gold, err := createType(step("type create, same backend"), prefix+"gold", nil)
	if err != nil {
		return out, err
	}
	remote, err := createType(step("type create, another backend"), prefix+"remote", map[string]string{"volume_backend_name": "no-such-backend-e2e"})
	if err != nil {
		return out, err
	}
	r, err = call(&Obs{Step: "read b"}, rig.Volume, "GET", "/volumes/"+bID, "3.0", nil)
	if err != nil {
		return out, err
	}
	bType := str(field(r, "volume")["volume_type"])
	for _, f := range []struct{ name, newType, policy string }{
		{"retype to an unknown type", "no-such-type-e2e", "never"},
		{"retype to its own type", bType, "never"},
		{"retype with a bad migration policy", gold, "sometimes"},
	} {
		if _, err := call(step(f.name), rig.Volume, "POST", "/volumes/"+bID+"/action", "3.0",
			map[string]any{"os-retype": map[string]any{"new_type": f.newType, "migration_policy": f.policy}}); err != nil {
			return out, err
		}
	}
	retype := func(name, newType string) error {
		o := step(name)
		r, err := call(o, rig.Volume, "POST", "/volumes/"+bID+"/action", "3.0",
			map[string]any{"os-retype": map[string]any{"new_type": newType, "migration_policy": "never"}})
		if err != nil || r.Status != 202 {
			return err
		}
		o.States = pollUntil(ctx, c, "volumes", bID, []string{"retyping"}, func(v map[string]any) bool { return str(v["status"]) != "retyping" })
		r, err = c.Do(ctx, rig.Volume, "GET", "/volumes/"+bID, "3.0", nil)
		if err != nil {
			return err
		}
		switch typ := str(field(r, "volume")["volume_type"]); typ {
		case bType:
			o.Extra = "type unchanged"
		case newType:
			o.Extra = "type changed"
		default:
			o.Extra = "type " + typ
		}
		return nil
	}
	if err := retype("retype on the same backend", gold); err != nil {
		return out, err
	}
	bType = gold
	if err := retype("retype to another backend, policy never", remote); err != nil {
		return out, err
	}

	// 13. 413 over quota: the project's gigabytes limit set just above
	// its usage, then a volume larger than what is left.
	o = step("create over the gigabytes quota")
	restore, err := lowerGigabytes(ctx, c, t.Admin, 1)
	if err != nil {
		return out, err
	}
	r, err = call(o, rig.Volume, "POST", "/volumes", "3.0", map[string]any{"volume": map[string]any{"size": 5, "name": prefix + "big"}})
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return out, err
	}
	if r.Status == 202 {
		volumes = append(volumes, str(field(r, "volume")["id"]))
	}
	if ra := r.Header.Get("Retry-After"); ra != "" {
		o.Extra = "Retry-After " + ra
	}

	// 14. deletes and their states.
	o = step("snapshot delete")
	if _, err := call(o, rig.Volume, "DELETE", "/snapshots/"+snap, "3.0", nil); err != nil {
		return out, err
	}
	o.States = pollGone(ctx, c, "snapshots", snap)
	snapshots = nil
	for i, v := range volumes {
		o := step(fmt.Sprintf("volume delete %d", i+1))
		if _, err := call(o, rig.Volume, "DELETE", "/volumes/"+v, "3.0", nil); err != nil {
			return out, err
		}
		o.States = pollGone(ctx, c, "volumes", v)
	}
	volumes = nil
	return out, nil
}

// lowerGigabytes sets the project's gigabytes quota to its usage plus
// headroom and returns the function that puts the old limit back.
func lowerGigabytes(ctx context.Context, c, admin *rig.Client, headroom int) (func() error, error) {
	r, err := c.Do(ctx, rig.Volume, "GET", "/os-quota-sets/"+c.ProjectID+"?usage=true", "3.0", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("quota get: %d %s", r.Status, r.Body)
	}
	g, _ := field(r, "quota_set")["gigabytes"].(map[string]any)
	used := int(num(g["in_use"])) + int(num(g["reserved"]))
	old, err := admin.SetGigabytesQuota(ctx, c.ProjectID, used+headroom)
	if err != nil {
		return nil, err
	}
	return func() error {
		_, err := admin.SetGigabytesQuota(context.Background(), c.ProjectID, old)
		return err
	}, nil
}

func ours(r *rig.Response, prefix string) []string {
	var body struct {
		Volumes []struct{ Name string } `json:"volumes"`
	}
	_ = json.Unmarshal(r.Body, &body)
	var names []string
	for _, v := range body.Volumes {
		if strings.HasPrefix(v.Name, prefix) {
			names = append(names, strings.TrimPrefix(v.Name, prefix))
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

func field(r *rig.Response, key string) map[string]any {
	m, _ := r.JSON()[key].(map[string]any)
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// pollInterval is short so that the intermediate states of a real Cinder
// (which spends 0.3-1.5 s per operation on the rig) are seen.
const pollInterval = 40 * time.Millisecond

func poll(ctx context.Context, c *rig.Client, kind, id string, seen []string, final ...string) []string {
	return pollUntil(ctx, c, kind, id, seen, func(v map[string]any) bool { return slices.Contains(final, str(v["status"])) })
}

func pollUntil(ctx context.Context, c *rig.Client, kind, id string, seen []string, done func(map[string]any) bool) []string {
	deadline := time.Now().Add(3 * time.Minute)
	key := strings.TrimSuffix(kind, "s")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := c.Do(ctx, rig.Volume, "GET", "/"+kind+"/"+id, "3.42", nil)
		if err != nil || r.Status != 200 {
			return append(seen, "?")
		}
		v := field(r, key)
		seen = appendState(seen, str(v["status"]))
		if done(v) {
			return seen
		}
		time.Sleep(pollInterval)
	}
	return append(seen, "timeout")
}

func pollGone(ctx context.Context, c *rig.Client, kind, id string) []string {
	var seen []string
	deadline := time.Now().Add(3 * time.Minute)
	key := strings.TrimSuffix(kind, "s")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := c.Do(ctx, rig.Volume, "GET", "/"+kind+"/"+id, "3.42", nil)
		if err != nil {
			return append(seen, "?")
		}
		if r.Status == 404 {
			return appendState(seen, "gone")
		}
		seen = appendState(seen, str(field(r, key)["status"]))
		time.Sleep(pollInterval)
	}
	return append(seen, "timeout")
}

func appendState(seen []string, s string) []string {
	if len(seen) > 0 && seen[len(seen)-1] == s {
		return seen
	}
	return append(seen, s)
}

func waitStatus(ctx context.Context, c *rig.Client, kind, id, want string) {
	poll(ctx, c, kind, id, nil, want, "error")
}

func waitGone(ctx context.Context, c *rig.Client, kind, id string) { pollGone(ctx, c, kind, id) }
