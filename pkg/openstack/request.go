package openstack

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
)

// req is one API call: which service and operation (for metrics and the
// retry policy), what it concerns (for error messages), and its HTTP shape.
type req struct {
	service  string
	op       string
	resource string
	method   string
	url      string
	body     any
	out      any
	ok       []int
}

// do sends r through gophercloud (auth, re-auth on 401, retries) and
// classifies any failure.
func do(ctx context.Context, sc *gophercloud.ServiceClient, r req) error {
	ctx = withCall(ctx, r.service, r.op)
	opts := &gophercloud.RequestOpts{OkCodes: r.ok}
	if r.body != nil {
		opts.JSONBody = r.body
	}
	if r.out != nil {
		opts.JSONResponse = r.out
	}
	_, err := sc.Request(ctx, r.method, r.url, opts)
	return classify(err, r.op, r.resource)
}

// listQuery renders the Cinder list filters. The metadata filter is a
// JSON object, which Cinder parses as a Python literal.
func listQuery(o ListOpts, withFilters bool) string {
	q := url.Values{}
	if withFilters {
		if o.Name != "" {
			q.Set("name", o.Name)
		}
		if len(o.Metadata) > 0 {
			b, _ := json.Marshal(o.Metadata)
			q.Set("metadata", string(b))
		}
	}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.VolumeID != "" {
		q.Set("volume_id", o.VolumeID)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Marker != "" {
		q.Set("marker", o.Marker)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// matchesMeta reports whether have includes every pair of want.
func matchesMeta(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// maxListPages bounds a listing that follows every page: at Cinder's
// default osapi_max_limit of 1000 that is 100k resources, beyond any
// project we serve, and it stops a service that loops its links.
const maxListPages = 100

type gopherClient = *gophercloud.ServiceClient
