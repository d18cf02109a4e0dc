package manila

import (
	"context"
	"strings"

	"k8s.io/klog/v2"

	"github.com/cinder-csi/cinder-csi/pkg/openstack"
)

// Access levels of a Manila access rule.
const (
	levelRW = "rw"
	levelRO = "ro"
)

// ensureRule makes sure the share has a rule of this type for accessTo,
// granting it with meta when absent, and waits until it is active (and,
// for cephx, has its key). A rule that exists with another level is
// FailedPrecondition: Manila keeps one rule per address or identity, and
// silently changing someone's rule is not ours to do.
func ensureRule(ctx context.Context, c openstack.ShareCloud, shareID, accessType, accessTo, level string, meta map[string]string) (*openstack.AccessRule, error) {
	rules, err := c.ListAccessRules(ctx, shareID)
	if err != nil {
		return nil, StatusFromError(err, "listing the access rules of share %s", shareID)
	}
	rule := findRule(rules, accessType, accessTo)
	switch {
	case rule == nil:
		rule, err = c.GrantAccess(ctx, openstack.GrantAccessOpts{
			ShareID: shareID, AccessType: accessType, AccessTo: accessTo, AccessLevel: level, Metadata: meta,
		})
		if err != nil {
			return nil, StatusFromError(err, "granting %s access to %s on share %s", accessType, accessTo, shareID)
		}
		klog.V(2).InfoS("Granted share access", "shareID", shareID, "accessType", accessType, "accessTo", accessTo, "level", level, "accessID", rule.ID)
	case rule.State == openstack.AccessQueuedToDeny || rule.State == openstack.AccessDenying:
		return nil, errInProgress("the %s rule for %s on share %s is being revoked; retry once it is gone", accessType, accessTo, shareID)
	case rule.AccessLevel != level:
		return nil, errPrecondition("share %s already grants %s %s access to %s (rule %s); this request needs %s", shareID, rule.AccessLevel, accessType, accessTo, rule.ID, level)
	}
	active, err := c.WaitAccessRule(ctx, shareID, rule.ID)
	if err != nil {
		if reason, failed := errorStateReason(err); failed {
			return nil, errFailedState(reason, "the %s rule %s for %s on share %s went to error", accessType, rule.ID, accessTo, shareID)
		}
		return nil, StatusFromError(err, "waiting for the %s rule %s on share %s to become active", accessType, rule.ID, shareID)
	}
	return active, nil
}

// findRule returns the rule of accessType for accessTo, or nil.
func findRule(rules []openstack.AccessRule, accessType, accessTo string) *openstack.AccessRule {
	for i := range rules {
		if rules[i].AccessType == accessType && strings.EqualFold(rules[i].AccessTo, accessTo) {
			return &rules[i]
		}
	}
	return nil
}

// revokeRules revokes the rules and waits until each is gone. Rules
// already gone count as revoked.
func revokeRules(ctx context.Context, c openstack.ShareCloud, shareID string, rules []openstack.AccessRule) error {
	for _, r := range rules {
		if r.State == openstack.AccessQueuedToDeny || r.State == openstack.AccessDenying {
			continue
		}
		if err := c.RevokeAccess(ctx, shareID, r.ID); err != nil && !openstack.IsNotFound(err) {
			return StatusFromError(err, "revoking access rule %s (%s %s) of share %s", r.ID, r.AccessType, r.AccessTo, shareID)
		}
		klog.V(2).InfoS("Revoked share access", "shareID", shareID, "accessID", r.ID, "accessType", r.AccessType, "accessTo", r.AccessTo)
	}
	for _, r := range rules {
		if err := c.WaitAccessRuleGone(ctx, shareID, r.ID); err != nil && !openstack.IsNotFound(err) {
			return StatusFromError(err, "waiting for access rule %s of share %s to be removed", r.ID, shareID)
		}
	}
	return nil
}

// accessMetadata returns meta when the cloud stores access rule metadata
// (2.45), else nil: an older Manila rejects the field.
func accessMetadata(f openstack.ShareFeatures, meta map[string]string) map[string]string {
	if !f.AccessMetadata {
		return nil
	}
	return meta
}
