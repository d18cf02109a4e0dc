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

// quotaUsage matches the figures in Cinder's over-quota messages that
// come from the project's usage at that moment, not from the request: a
// real project holds what other runs left or are still deleting, so the
// two clouds' figures differ while the refusal is the same (seen
// 2026-12-02: "quota is 6G and 5G has been consumed" on the rig, 8G and
// 7G on the emulator).
var quotaUsage = regexp.MustCompile(`quota is \d+G and \d+G has been consumed|allowed \(\d+\) exceeded`)

func normalize(s string) string {
	s = idPattern.ReplaceAllString(s, "<id>")
	s = runPrefix.ReplaceAllString(s, "diff-<run>-")
	s = quotaUsage.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "allowed") {
			return "allowed (<n>) exceeded"
		}
		return "quota is <n>G and <n>G has been consumed"
	})
	return strings.TrimSpace(s)
}

// run executes the scenario on t and returns the observations in order.
// Everything it creates is deleted before it returns, also on failure.
func run(ctx context.Context, t Target, logf func(string, ...any)) ([]Obs, error) {
	cr := newCinderRun(ctx, t, logf)
	defer cr.cleanup()
	err := runPhases(cr.attachPhase, cr.inUsePhase, cr.snapshotAndListPhase, cr.retypePhase, cr.quotaPhase, cr.deletePhase)
	return cr.out, err
}

// runPhases runs a scenario's phases in order and stops at the first
// error.
func runPhases(phases ...func() error) error {
	for _, p := range phases {
		if err := p(); err != nil {
			return err
		}
	}
	return nil
}

// cinderRun is one run of the Cinder scenario on one cloud: the steps it
// observed, what it made (deleted by cleanup) and the ids one phase hands
// to the next.
type cinderRun struct {
	ctx    context.Context
	t      Target
	c      *rig.Client
	logf   func(string, ...any)
	prefix string
	out    []Obs

	volumes, snapshots, types []string
	attached                  map[string]string // volume -> server

	a, snap string // the first volume and its snapshot
}

func newCinderRun(ctx context.Context, t Target, logf func(string, ...any)) *cinderRun {
	return &cinderRun{ctx: ctx, t: t, c: t.Client, logf: logf, prefix: "diff-" + rig.NewUUID()[:8] + "-", attached: map[string]string{}}
}

// cleanup detaches and deletes whatever the run left.
func (cr *cinderRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := cr.c
	for v, s := range cr.attached {
		_, _ = c.Do(ctx, rig.Compute, "DELETE", "/servers/"+s+"/os-volume_attachments/"+v, "2.79", nil)
		waitStatus(ctx, c, "volumes", v, "available")
	}
	for _, s := range cr.snapshots {
		_, _ = c.Do(ctx, rig.Volume, "DELETE", "/snapshots/"+s, "3.0", nil)
		waitGone(ctx, c, "snapshots", s)
	}
	for _, v := range cr.volumes {
		_, _ = c.Do(ctx, rig.Volume, "DELETE", "/volumes/"+v, "3.0", nil)
		waitGone(ctx, c, "volumes", v)
	}
	for _, id := range cr.types {
		_, _ = cr.t.Admin.Do(ctx, rig.Volume, "DELETE", "/types/"+id, "3.0", nil)
	}
}

func (cr *cinderRun) step(name string) *Obs {
	cr.out = append(cr.out, Obs{Step: name})
	return &cr.out[len(cr.out)-1]
}

// call sends one request for step o and records its answer.
func (cr *cinderRun) call(o *Obs, svc rig.Service, method, path, mv string, body any) (*rig.Response, error) {
	r, err := cr.c.Do(cr.ctx, svc, method, path, mv, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Step, err)
	}
	errorOf(o, r)
	cr.logf("%s %s: %s %s → %d %s", cr.t.Name, o.Step, method, path, r.Status, truncate(string(r.Body)))
	return r, nil
}

// simple is a step of one call.
func (cr *cinderRun) simple(name string, svc rig.Service, method, path, mv string, body any) error {
	_, err := cr.call(cr.step(name), svc, method, path, mv, body)
	return err
}

func (cr *cinderRun) createType(o *Obs, name string, specs map[string]string) (string, error) {
	body := map[string]any{"name": name}
	if specs != nil {
		body["extra_specs"] = specs
	}
	r, err := cr.t.Admin.Do(cr.ctx, rig.Volume, "POST", "/types", "3.0", map[string]any{"volume_type": body})
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.Step, err)
	}
	errorOf(o, r)
	if r.Status != 200 {
		return "", fmt.Errorf("%s: %d %s", o.Step, r.Status, r.Body)
	}
	cr.types = append(cr.types, str(field(r, "volume_type")["id"]))
	return name, nil
}

func (cr *cinderRun) createVolume(name string, size int) (string, error) {
	o := cr.step("volume create " + name)
	r, err := cr.call(o, rig.Volume, "POST", "/volumes", "3.0", map[string]any{"volume": map[string]any{"size": size, "name": cr.prefix + name}})
	if err != nil {
		return "", err
	}
	if r.Status != 202 {
		return "", fmt.Errorf("volume create: %d %s", r.Status, r.Body)
	}
	v := field(r, "volume")
	id, _ := v["id"].(string)
	cr.volumes = append(cr.volumes, id)
	o.States = append(o.States, str(v["status"]))
	o.States = poll(cr.ctx, cr.c, "volumes", id, o.States, "available", "error")
	return id, nil
}

// attachPhase: steps 1 to 5.
func (cr *cinderRun) attachPhase() error {
	// 1. volume create and its states.
	a, err := cr.createVolume("a", 1)
	if err != nil {
		return err
	}
	cr.a = a

	// 2. create with an unknown volume type.
	if err := cr.simple("create with unknown type", rig.Volume, "POST", "/volumes", "3.0",
		map[string]any{"volume": map[string]any{"size": 1, "name": cr.prefix + "badtype", "volume_type": "no-such-type-e2e"}}); err != nil {
		return err
	}

	// 3. attach to a missing server.
	attachBody := map[string]any{"volumeAttachment": map[string]any{"volumeId": a}}
	if err := cr.simple("attach to a missing server", rig.Compute, "POST", "/servers/"+rig.NewUUID()+"/os-volume_attachments", "2.79", attachBody); err != nil {
		return err
	}

	// 4. attach through Nova and the volume's states.
	o := cr.step("attach to server 1")
	r, err := cr.call(o, rig.Compute, "POST", "/servers/"+cr.t.Server1+"/os-volume_attachments", "2.79", attachBody)
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fmt.Errorf("attach: %d %s", r.Status, r.Body)
	}
	cr.attached[a] = cr.t.Server1
	o.Extra = "device " + str(field(r, "volumeAttachment")["device"])
	o.States = poll(cr.ctx, cr.c, "volumes", a, nil, "in-use", "error", "available")

	// 5. a second attach of a non-multiattach volume, to another server
	// and to the same one.
	if err := cr.simple("second attach to server 2", rig.Compute, "POST", "/servers/"+cr.t.Server2+"/os-volume_attachments", "2.79", attachBody); err != nil {
		return err
	}
	return cr.simple("second attach to server 1", rig.Compute, "POST", "/servers/"+cr.t.Server1+"/os-volume_attachments", "2.79", attachBody)
}

// inUsePhase: steps 6 to 9, on the attached volume, ending detached.
func (cr *cinderRun) inUsePhase() error {
	a := cr.a
	// 6. extend in-use below 3.42, then at 3.42.
	if err := cr.simple("extend in-use at 3.0", rig.Volume, "POST", "/volumes/"+a+"/action", "3.0",
		map[string]any{"os-extend": map[string]any{"new_size": 2}}); err != nil {
		return err
	}
	o := cr.step("extend in-use at 3.42")
	if _, err := cr.call(o, rig.Volume, "POST", "/volumes/"+a+"/action", "3.42",
		map[string]any{"os-extend": map[string]any{"new_size": 2}}); err != nil {
		return err
	}
	o.States = pollUntil(cr.ctx, cr.c, "volumes", a, nil, func(v map[string]any) bool {
		return str(v["status"]) == "in-use" && num(v["size"]) == 2 || strings.HasPrefix(str(v["status"]), "error")
	})

	// 7. delete of an attached volume.
	if err := cr.simple("delete attached volume", rig.Volume, "DELETE", "/volumes/"+a, "3.0", nil); err != nil {
		return err
	}

	// 8. snapshot of an in-use volume without force.
	if err := cr.simple("snapshot in-use without force at 3.0", rig.Volume, "POST", "/snapshots", "3.0",
		map[string]any{"snapshot": map[string]any{"volume_id": a, "name": cr.prefix + "snap-inuse"}}); err != nil {
		return err
	}

	// 9. detach and its states.
	o = cr.step("detach from server 1")
	if _, err := cr.call(o, rig.Compute, "DELETE", "/servers/"+cr.t.Server1+"/os-volume_attachments/"+a, "2.79", nil); err != nil {
		return err
	}
	o.States = poll(cr.ctx, cr.c, "volumes", a, nil, "available", "error")
	delete(cr.attached, a)
	return nil
}

// snapshotAndListPhase: steps 10 to 12.
func (cr *cinderRun) snapshotAndListPhase() error {
	// 10. delete of a volume with snapshots.
	o := cr.step("snapshot create")
	r, err := cr.call(o, rig.Volume, "POST", "/snapshots", "3.0",
		map[string]any{"snapshot": map[string]any{"volume_id": cr.a, "name": cr.prefix + "snap"}})
	if err != nil {
		return err
	}
	if r.Status != 202 {
		return fmt.Errorf("snapshot create: %d %s", r.Status, r.Body)
	}
	cr.snap = str(field(r, "snapshot")["id"])
	cr.snapshots = append(cr.snapshots, cr.snap)
	o.States = poll(cr.ctx, cr.c, "snapshots", cr.snap, []string{str(field(r, "snapshot")["status"])}, "available", "error")
	if err := cr.simple("delete volume with snapshots", rig.Volume, "DELETE", "/volumes/"+cr.a, "3.0", nil); err != nil {
		return err
	}

	// 11. a bad marker.
	if err := cr.simple("list with an unknown marker", rig.Volume, "GET", "/volumes?marker="+rig.NewUUID(), "3.0", nil); err != nil {
		return err
	}

	// 12. name filtering by microversion.
	if _, err := cr.createVolume("b", 1); err != nil {
		return err
	}
	prefix := cr.prefix
	for _, f := range []struct{ name, query, mv string }{
		{"list name= at 3.0", "name=" + prefix + "a", "3.0"},
		{"list name~ at 3.0", "name~=" + prefix + "a", "3.0"},
		{"list name~ at 3.33", "name~=" + prefix + "a", "3.33"},
		{"list name~ at 3.34", "name~=" + prefix + "a", "3.34"},
		{"list unknown filter at 3.30", "nosuchfilter=x", "3.30"},
		{"list unknown filter at 3.31", "nosuchfilter=x", "3.31"},
	} {
		o := cr.step(f.name)
		r, err := cr.call(o, rig.Volume, "GET", "/volumes/detail?"+f.query, f.mv, nil)
		if err != nil {
			return err
		}
		if r.Status == 200 {
			o.Extra = "ours listed: " + strings.Join(ours(r, prefix), ",")
		}
	}
	return nil
}

// retypePhase: step 12b, retype (ControllerModifyVolume): refusals, a
// retype on the same backend, and one to a type whose backend the
// scheduler cannot use under migration_policy never (Cinder reverts it
// silently).
func (cr *cinderRun) retypePhase() error {
	bID := cr.volumes[len(cr.volumes)-1]
	gold, err := cr.createType(cr.step("type create, same backend"), cr.prefix+"gold", nil)
	if err != nil {
		return err
	}
	remote, err := cr.createType(cr.step("type create, another backend"), cr.prefix+"remote", map[string]string{"volume_backend_name": "no-such-backend-e2e"})
	if err != nil {
		return err
	}
	r, err := cr.call(&Obs{Step: "read b"}, rig.Volume, "GET", "/volumes/"+bID, "3.0", nil)
	if err != nil {
		return err
	}
	bType := str(field(r, "volume")["volume_type"])
	for _, f := range []struct{ name, newType, policy string }{
		{"retype to an unknown type", "no-such-type-e2e", "never"},
		{"retype to its own type", bType, "never"},
		{"retype with a bad migration policy", gold, "sometimes"},
	} {
		if err := cr.simple(f.name, rig.Volume, "POST", "/volumes/"+bID+"/action", "3.0",
			map[string]any{"os-retype": map[string]any{"new_type": f.newType, "migration_policy": f.policy}}); err != nil {
			return err
		}
	}
	if err := cr.retype("retype on the same backend", bID, bType, gold); err != nil {
		return err
	}
	return cr.retype("retype to another backend, policy never", bID, gold, remote)
}

// retype is a step retyping volume id from type had to newType under
// migration_policy never, followed until it leaves retyping; Extra says
// whether the type changed.
func (cr *cinderRun) retype(name, id, had, newType string) error {
	o := cr.step(name)
	r, err := cr.call(o, rig.Volume, "POST", "/volumes/"+id+"/action", "3.0",
		map[string]any{"os-retype": map[string]any{"new_type": newType, "migration_policy": "never"}})
	if err != nil || r.Status != 202 {
		return err
	}
	o.States = pollUntil(cr.ctx, cr.c, "volumes", id, []string{"retyping"}, func(v map[string]any) bool { return str(v["status"]) != "retyping" })
	r, err = cr.c.Do(cr.ctx, rig.Volume, "GET", "/volumes/"+id, "3.0", nil)
	if err != nil {
		return err
	}
	switch typ := str(field(r, "volume")["volume_type"]); typ {
	case had:
		o.Extra = "type unchanged"
	case newType:
		o.Extra = "type changed"
	default:
		o.Extra = "type " + typ
	}
	return nil
}

// quotaPhase: step 13, 413 over quota: the project's gigabytes limit set
// just above its usage, then a volume larger than what is left.
func (cr *cinderRun) quotaPhase() error {
	o := cr.step("create over the gigabytes quota")
	restore, err := lowerGigabytes(cr.ctx, cr.c, cr.t.Admin, 1)
	if err != nil {
		return err
	}
	r, err := cr.call(o, rig.Volume, "POST", "/volumes", "3.0", map[string]any{"volume": map[string]any{"size": 5, "name": cr.prefix + "big"}})
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	if r.Status == 202 {
		cr.volumes = append(cr.volumes, str(field(r, "volume")["id"]))
	}
	if ra := r.Header.Get("Retry-After"); ra != "" {
		o.Extra = "Retry-After " + ra
	}
	return nil
}

// deletePhase: step 14, deletes and their states.
func (cr *cinderRun) deletePhase() error {
	o := cr.step("snapshot delete")
	if _, err := cr.call(o, rig.Volume, "DELETE", "/snapshots/"+cr.snap, "3.0", nil); err != nil {
		return err
	}
	o.States = pollGone(cr.ctx, cr.c, "snapshots", cr.snap)
	cr.snapshots = nil
	return cr.deleteVolumes()
}

// deleteVolumes is a step per volume made, deleting it and following it
// until it is gone.
func (cr *cinderRun) deleteVolumes() error {
	for i, v := range cr.volumes {
		o := cr.step(fmt.Sprintf("volume delete %d", i+1))
		if _, err := cr.call(o, rig.Volume, "DELETE", "/volumes/"+v, "3.0", nil); err != nil {
			return err
		}
		o.States = pollGone(cr.ctx, cr.c, "volumes", v)
	}
	cr.volumes = nil
	return nil
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

// logBodyBytes is how much of an answer's body a step's log line shows:
// enough for an OpenStack error message.
const logBodyBytes = 300

func truncate(s string) string {
	if len(s) > logBodyBytes {
		return s[:logBodyBytes] + "..."
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
		seen = appendState(seen, stateOf(v))
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
		seen = appendState(seen, stateOf(field(r, key)))
		time.Sleep(pollInterval)
	}
	return append(seen, "timeout")
}

// stateOf is one polled view: the status, and for a volume with
// attachments how many its own view lists (Cinder keeps a detaching
// volume's attachment there until the detach is done).
func stateOf(v map[string]any) string {
	s := str(v["status"])
	if atts, ok := v["attachments"].([]any); ok && len(atts) > 0 {
		s += fmt.Sprintf("(%d attached)", len(atts))
	}
	return s
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
