package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// ManilaClient speaks raw Manila v2 with a rig.Client's token: the
// endpoint comes from the catalog's sharev2 entry.
type ManilaClient struct {
	*rig.Client
	Share string // sharev2 endpoint, project id included
}

// NewManilaClient finds the sharev2 endpoint of c's catalog; ok is false
// when the cloud has no Manila.
func NewManilaClient(ctx context.Context, c *rig.Client) (*ManilaClient, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Identity+"/auth/catalog", nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Auth-Token", c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	var cat struct {
		Catalog []struct {
			Type      string `json:"type"`
			Endpoints []struct {
				Interface string `json:"interface"`
				URL       string `json:"url"`
			} `json:"endpoints"`
		} `json:"catalog"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		return nil, false, fmt.Errorf("catalog: %w", err)
	}
	for _, s := range cat.Catalog {
		if s.Type != "sharev2" {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Interface == "public" {
				return &ManilaClient{Client: c, Share: strings.TrimSuffix(ep.URL, "/")}, true, nil
			}
		}
	}
	return nil, false, nil
}

// Root is the service's root URL (version list), the endpoint without
// /v2/<project>.
func (m *ManilaClient) Root() string {
	if i := strings.Index(m.Share, "/v2"); i >= 0 {
		return m.Share[:i]
	}
	return m.Share
}

// Do sends one Manila call; path is relative to the endpoint unless it
// starts with "http". mv "" sends no version header.
func (m *ManilaClient) Do(ctx context.Context, method, path, mv string, body any) (*rig.Response, error) {
	url := path
	if !strings.HasPrefix(path, "http") {
		url = m.Share + path
	}
	header := http.Header{}
	header.Set("X-Auth-Token", m.Token)
	if mv != "" {
		header.Set("X-OpenStack-Manila-API-Version", mv)
	}
	return rig.SendJSON(ctx, m.HTTP, method, url, body, header)
}
