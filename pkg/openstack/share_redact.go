package openstack

import (
	"fmt"
	"sort"
	"strings"
)

// An AccessRule carries a cephx secret once Manila has issued it. Every
// fmt verb prints the rule through String, which shows only whether a
// key is present, so a log line or an error that formats a rule (or a
// slice of them) cannot leak it.

func (r AccessRule) String() string {
	key := ""
	if r.AccessKey != "" {
		key = " AccessKey:" + redactedKey
	}
	meta := ""
	if len(r.Metadata) > 0 {
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k+"="+r.Metadata[k])
		}
		sort.Strings(keys)
		meta = " Metadata:{" + strings.Join(keys, " ") + "}"
	}
	return fmt.Sprintf("AccessRule{ID:%s ShareID:%s AccessType:%s AccessTo:%s AccessLevel:%s State:%s%s%s}",
		r.ID, r.ShareID, r.AccessType, r.AccessTo, r.AccessLevel, r.State, key, meta)
}

// Format routes every verb (%v, %+v, %#v, %s, %q) through String.
func (r AccessRule) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

const redactedKey = "<redacted>"
