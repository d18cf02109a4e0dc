package openstack

import (
	"context"
	"net/http"
	"net/url"
)

// Manila access rules. A rule is made with the share's allow_access
// action and is then queued_to_apply → applying → active; a cephx rule's
// access_key appears only after that (the allow answer has access_key
// null, and on the rig the key shows about 0.6 s later), so the key is
// only ever read from the rule list, never from the allow answer.

func (c *cloud) GrantAccess(ctx context.Context, o GrantAccessOpts) (*AccessRule, error) {
	const op = "share_access_allow"
	if err := checkID(op, o.ShareID); err != nil {
		return nil, err
	}
	if o.AccessType == "" || o.AccessTo == "" {
		return nil, &Error{Kind: KindBadRequest, Op: op, Resource: o.ShareID, Message: "an access rule needs an access type and whom it grants"}
	}
	sc, f, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	level := o.AccessLevel
	if level == "" {
		level = "rw"
	}
	body := map[string]any{"access_type": o.AccessType, "access_to": o.AccessTo, "access_level": level}
	if len(o.Metadata) > 0 {
		if !f.AccessMetadata {
			return nil, &Error{Kind: KindConflict, Op: op, Resource: o.ShareID,
				Message: "metadata on access rules needs Manila microversion " + mvShareAccessMetadata + "; this cloud offers " + f.Microversion}
		}
		body["metadata"] = o.Metadata
	}
	out := oneBody[wireAccessRule]{key: "access"}
	var adopted *AccessRule
	err = shareDo(ctx, sc, req{op: op, resource: o.ShareID, method: http.MethodPost,
		url: sc.ServiceURL("shares", o.ShareID, "action"), body: map[string]any{"allow_access": body},
		out: &out, ok: []int{200},
		// Manila refuses a second rule for the same type and target, so
		// a rule found for them after an ambiguous failure is this one.
		reconcile: func(ctx context.Context) (bool, error) {
			rules, err := c.ListAccessRules(ctx, o.ShareID)
			if err != nil {
				return false, err
			}
			adopted, err = adoptOne(rules, "access rules", func(r *AccessRule) bool {
				return r.AccessType == o.AccessType && r.AccessTo == o.AccessTo
			})
			return adopted != nil, err
		}})
	if err != nil {
		return nil, err
	}
	if adopted != nil {
		return adopted, nil
	}
	r := out.item.toRule(o.ShareID)
	r.AccessKey = "" // not yet valid in the allow answer: read it from the list
	return &r, nil
}

// ListAccessRules lists a share's rules with their states and keys:
// GET /share-access-rules?share_id= at 2.45 and later, the access_list
// action before.
func (c *cloud) ListAccessRules(ctx context.Context, shareID string) ([]AccessRule, error) {
	return c.listAccessRules(ctx, "share_access_list", shareID)
}

func (c *cloud) listAccessRules(ctx context.Context, op, shareID string) ([]AccessRule, error) {
	if err := checkID(op, shareID); err != nil {
		return nil, err
	}
	sc, f, err := c.shareClient(ctx)
	if err != nil {
		return nil, err
	}
	var out struct {
		Rules []wireAccessRule `json:"access_list"`
	}
	r := req{op: op, resource: shareID, out: &out, ok: []int{200}}
	if f.AccessMetadata {
		r.method, r.url = http.MethodGet, sc.ServiceURL("share-access-rules")+"?share_id="+url.QueryEscape(shareID)
	} else {
		r.method, r.url, r.body = http.MethodPost, sc.ServiceURL("shares", shareID, "action"), map[string]any{"access_list": nil}
		// Reading the list changes nothing: sending it again is safe.
		r.reconcile = func(context.Context) (bool, error) { return false, nil }
	}
	if err := shareDo(ctx, sc, r); err != nil {
		return nil, err
	}
	rules := make([]AccessRule, 0, len(out.Rules))
	for i := range out.Rules {
		rules = append(rules, out.Rules[i].toRule(shareID))
	}
	return rules, nil
}

// RevokeAccess asks Manila to deny a rule; it is queued_to_deny, then
// denying, then gone (WaitAccessRuleGone). A rule that is already gone is
// KindNotFound.
func (c *cloud) RevokeAccess(ctx context.Context, shareID, accessID string) error {
	const op = "share_access_deny"
	if err := checkID(op, shareID); err != nil {
		return err
	}
	if err := checkID(op, accessID); err != nil {
		return err
	}
	sc, _, err := c.shareClient(ctx)
	if err != nil {
		return err
	}
	return shareDo(ctx, sc, req{op: op, resource: accessID, method: http.MethodPost,
		url:  sc.ServiceURL("shares", shareID, "action"),
		body: map[string]any{"deny_access": map[string]any{"access_id": accessID}}, ok: []int{202},
		reconcile: func(ctx context.Context) (bool, error) {
			rules, err := c.ListAccessRules(ctx, shareID)
			if err != nil {
				return false, err
			}
			for _, r := range rules {
				if r.ID == accessID {
					return r.State == AccessQueuedToDeny || r.State == AccessDenying, nil
				}
			}
			return true, nil
		}})
}
