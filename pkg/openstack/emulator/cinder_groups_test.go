package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// groupCall sends one raw Cinder request and returns the status and the
// decoded body.
func groupCall(t *testing.T, c *gophercloud.ServiceClient, method, path, mv string, body any) (int, map[string]any) {
	t.Helper()
	var out map[string]any
	opts := &gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}, MoreHeaders: map[string]string{"OpenStack-API-Version": "volume " + mv}}
	if body != nil {
		opts.JSONBody = body
	}
	opts.KeepResponseBody = true
	resp, err := c.Request(context.Background(), method, c.ServiceURL(strings.Split(strings.Trim(path, "/"), "/")...), opts)
	if err != nil {
		var code gophercloud.ErrUnexpectedResponseCode
		if ok := asCode(err, &code); ok {
			_ = json.Unmarshal(code.Body, &out)
			return code.Actual, out
		}
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func asCode(err error, code *gophercloud.ErrUnexpectedResponseCode) bool {
	for err != nil {
		if c, ok := err.(gophercloud.ErrUnexpectedResponseCode); ok {
			*code = c
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func errMessage(out map[string]any) string {
	for _, v := range out {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["message"].(string); ok {
				return s
			}
		}
	}
	return ""
}

func waitField(t *testing.T, c *gophercloud.ServiceClient, path, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, out := groupCall(t, c, "GET", path, "3.14", nil)
		if m, _ := out[key].(map[string]any); m != nil && m["status"] == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached %s", path, want)
}

func TestGroupSnapshotFlowMatchesZed(t *testing.T) {
	e := startEmu(t, Options{})
	c := newClients(t, e).vol
	mk := func(name string) string {
		_, out := groupCall(t, c, "POST", "volumes", "3.14", map[string]any{"volume": map[string]any{"name": name, "size": 1}})
		id := out["volume"].(map[string]any)["id"].(string)
		waitField(t, c, "volumes/"+id, "volume", "available")
		return id
	}
	v1, v2 := mk("v1"), mk("v2")
	code, out := groupCall(t, c, "GET", "groups", "3.0", nil)
	if code != 404 {
		t.Fatalf("groups at 3.0: %d %v", code, out)
	}
	code, out = groupCall(t, c, "POST", "groups", "3.14", map[string]any{"group": map[string]any{"name": "x", "group_type": "nope", "volume_types": []string{"__DEFAULT__"}}})
	if code != 404 || errMessage(out) != "Group type with name nope could not be found." {
		t.Fatalf("unknown group type: %d %v", code, out)
	}
	code, out = groupCall(t, c, "POST", "groups", "3.14", map[string]any{"group": map[string]any{"name": "g", "group_type": DefaultGroupTypeName, "volume_types": []string{"__DEFAULT__"}}})
	if code != 202 {
		t.Fatalf("group create: %d %v", code, out)
	}
	g := out["group"].(map[string]any)["id"].(string)
	waitField(t, c, "groups/"+g, "group", "available")
	code, out = groupCall(t, c, "POST", "group_snapshots", "3.14", map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": "gs"}})
	if code != 400 || !strings.Contains(errMessage(out), "Source group cannot be empty") {
		t.Fatalf("snapshot of an empty group: %d %v", code, out)
	}
	if code, out = groupCall(t, c, "PUT", "groups/"+g, "3.14", map[string]any{"group": map[string]any{"add_volumes": v1 + "," + v2}}); code != 202 {
		t.Fatalf("add: %d %v", code, out)
	}
	waitField(t, c, "groups/"+g, "group", "available")
	if code, out = groupCall(t, c, "DELETE", "volumes/"+v1, "3.14", nil); code != 400 || !strings.Contains(errMessage(out), "belong to a group") {
		t.Fatalf("delete of a member volume: %d %v", code, out)
	}
	code, out = groupCall(t, c, "POST", "group_snapshots", "3.14", map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": "gs"}})
	if code != 202 {
		t.Fatalf("group snapshot: %d %v", code, out)
	}
	gs := out["group_snapshot"].(map[string]any)["id"].(string)
	waitField(t, c, "group_snapshots/"+gs, "group_snapshot", "available")
	_, out = groupCall(t, c, "GET", "snapshots/detail?name=gs", "3.14", nil)
	snaps := out["snapshots"].([]any)
	if len(snaps) != 2 || snaps[0].(map[string]any)["group_snapshot_id"] != gs {
		t.Fatalf("members: %v", snaps)
	}
	member := snaps[0].(map[string]any)["id"].(string)
	if code, out = groupCall(t, c, "DELETE", "snapshots/"+member, "3.14", nil); code != 400 || !strings.Contains(errMessage(out), "must not be part of a group") {
		t.Fatalf("delete of a member snapshot: %d %v", code, out)
	}
	if code, out = groupCall(t, c, "POST", "groups/"+g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}}); code != 400 || errMessage(out) != "Invalid Group: Group has existing snapshots." {
		t.Fatalf("delete of a group with a snapshot: %d %v", code, out)
	}
	if code, out = groupCall(t, c, "PUT", "groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": v1 + "," + v2}}); code != 202 {
		t.Fatalf("remove: %d %v", code, out)
	}
	waitField(t, c, "groups/"+g, "group", "available")
	if code, out = groupCall(t, c, "PUT", "groups/"+g, "3.14", map[string]any{"group": map[string]any{"remove_volumes": v1}}); code != 400 || !strings.Contains(errMessage(out), "because it is not in the group") {
		t.Fatalf("second remove: %d %v", code, out)
	}
	if code, _ = groupCall(t, c, "DELETE", "group_snapshots/"+gs, "3.14", nil); code != 202 {
		t.Fatalf("group snapshot delete: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := groupCall(t, c, "GET", "group_snapshots/"+gs, "3.14", nil)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("group snapshot never went")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(e.Snapshots()) != 0 {
		t.Fatalf("member snapshots left: %v", e.Snapshots())
	}
	if code, out = groupCall(t, c, "POST", "groups/"+g+"/action", "3.14", map[string]any{"delete": map[string]any{"delete-volumes": false}}); code != 202 {
		t.Fatalf("group delete: %d %v", code, out)
	}
}
