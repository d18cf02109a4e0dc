package diff

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/cinder-csi/cinder-csi/tests/e2e/openstack/rig"
)

// KeystoneTarget is one cloud for the Keystone scenario: a member user who
// delegates (trustor, owner of the application credentials) and a second
// user who receives the trust.
type KeystoneTarget struct {
	Name            string
	Trustor         *rig.Client
	TrustorPassword string
	Trustee         *rig.Client
	TrusteePassword string
}

// runKeystone exercises what credential rotation and trusts lean on:
// application credentials (create, use, delete, and that deleting one
// revokes its tokens) and trusts (create, trust-scoped tokens, refusals,
// delete). Everything it creates is deleted before it returns.
func runKeystone(ctx context.Context, t KeystoneTarget, logf func(string, ...any)) (out []Obs, err error) {
	c := t.Trustor
	prefix := "diff-" + rig.NewUUID()[:8] + "-"
	var creds, trusts []string
	defer func() {
		for _, id := range creds {
			_, _ = c.Do(ctx, rig.Identity, "DELETE", "/users/"+c.UserID+"/application_credentials/"+id, "", nil)
		}
		for _, id := range trusts {
			_, _ = c.Do(ctx, rig.Identity, "DELETE", "/OS-TRUST/trusts/"+id, "", nil)
		}
	}()
	step := func(name string) *Obs {
		out = append(out, Obs{Step: "keystone: " + name})
		return &out[len(out)-1]
	}
	call := func(o *Obs, token, method, path string, body any) (*rig.Response, error) {
		r, err := c.DoWithToken(ctx, token, rig.Identity, method, path, "", body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Step, err)
		}
		errorOf(o, r)
		logf("%s %s: %s %s → %d %s", t.Name, o.Step, method, path, r.Status, truncate(string(r.Body), 300))
		return r, nil
	}
	// validate asks whether a token is still good (GET /v3/auth/tokens).
	validate := func(o *Obs, subject string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Identity+"/auth/tokens", nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Auth-Token", c.Token)
		req.Header.Set("X-Subject-Token", subject)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", o.Step, err)
		}
		defer resp.Body.Close()
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		errorOf(o, &rig.Response{Status: resp.StatusCode, Body: body[:n]})
		logf("%s %s: GET /auth/tokens → %d %s", t.Name, o.Step, resp.StatusCode, truncate(string(body[:n]), 300))
		return nil
	}
	issue := func(o *Obs, identity, scope map[string]any) (string, *rig.Response, error) {
		auth := map[string]any{"identity": identity}
		if scope != nil {
			auth["scope"] = scope
		}
		r, err := call(o, "", "POST", "/auth/tokens", map[string]any{"auth": auth})
		if err != nil {
			return "", nil, err
		}
		return r.Header.Get("X-Subject-Token"), r, nil
	}
	tokenFacts := func(r *rig.Response) string {
		tok, _ := r.JSON()["token"].(map[string]any)
		var facts []string
		if p, _ := tok["project"].(map[string]any); p != nil {
			facts = append(facts, "project="+who(str(p["id"]), c.ProjectID, t.Trustee.ProjectID))
		}
		if u, _ := tok["user"].(map[string]any); u != nil {
			facts = append(facts, "user="+who(str(u["id"]), c.UserID, t.Trustee.UserID))
		}
		if tr, _ := tok["OS-TRUST:trust"].(map[string]any); tr != nil {
			facts = append(facts, fmt.Sprintf("trust impersonation=%v", tr["impersonation"]))
		}
		return strings.Join(facts, " ")
	}
	credPath := "/users/" + c.UserID + "/application_credentials"
	secret := "diff-" + rig.NewUUID()

	o := step("application credential create")
	r, err := call(o, c.Token, "POST", credPath, map[string]any{"application_credential": map[string]any{"name": prefix + "ac", "secret": secret}})
	if err != nil {
		return out, err
	}
	ac, _ := r.JSON()["application_credential"].(map[string]any)
	credID := str(ac["id"])
	if credID != "" {
		creds = append(creds, credID)
		o.Extra = fmt.Sprintf("secret echoed=%v project=%s", ac["secret"] == secret, who(str(ac["project_id"]), c.ProjectID, t.Trustee.ProjectID))
	}
	if _, err := call(step("application credential with the same name"), c.Token, "POST", credPath,
		map[string]any{"application_credential": map[string]any{"name": prefix + "ac"}}); err != nil {
		return out, err
	}
	if _, err := call(step("application credential for another user"), c.Token, "POST", "/users/"+t.Trustee.UserID+"/application_credentials",
		map[string]any{"application_credential": map[string]any{"name": prefix + "other"}}); err != nil {
		return out, err
	}
	o = step("token from the application credential")
	acToken, r, err := issue(o, map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"id": credID, "secret": secret}}, nil)
	if err != nil {
		return out, err
	}
	if r.Status == http.StatusCreated {
		o.Extra = tokenFacts(r)
	}
	if _, _, err := issue(step("token from a wrong secret"), map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"id": credID, "secret": "not-" + secret}}, nil); err != nil {
		return out, err
	}
	if _, err := call(step("application credential token creates another"), acToken, "POST", credPath,
		map[string]any{"application_credential": map[string]any{"name": prefix + "nested"}}); err != nil {
		return out, err
	}
	if _, err := call(step("application credential delete"), c.Token, "DELETE", credPath+"/"+credID, nil); err != nil {
		return out, err
	}
	if err := validate(step("its token after the delete"), acToken); err != nil {
		return out, err
	}
	if _, err := call(step("application credential delete again"), c.Token, "DELETE", credPath+"/"+credID, nil); err != nil {
		return out, err
	}

	o = step("trust create")
	trustBody := func(trustor string) map[string]any {
		return map[string]any{"trust": map[string]any{"trustor_user_id": trustor, "trustee_user_id": t.Trustee.UserID,
			"project_id": c.ProjectID, "impersonation": false, "roles": []any{map[string]any{"name": "member"}}}}
	}
	r, err = call(o, c.Token, "POST", "/OS-TRUST/trusts", trustBody(c.UserID))
	if err != nil {
		return out, err
	}
	tr, _ := r.JSON()["trust"].(map[string]any)
	trustID := str(tr["id"])
	if trustID != "" {
		trusts = append(trusts, trustID)
		o.Extra = fmt.Sprintf("impersonation=%v expires_at=%v", tr["impersonation"], tr["expires_at"])
	}
	if _, err := call(step("trust create naming another trustor"), c.Token, "POST", "/OS-TRUST/trusts", trustBody(t.Trustee.UserID)); err != nil {
		return out, err
	}
	trustee := func(password string) map[string]any {
		return map[string]any{"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{"id": t.Trustee.UserID, "password": password}}}
	}
	scope := func(id string) map[string]any { return map[string]any{"OS-TRUST:trust": map[string]any{"id": id}} }
	o = step("trust-scoped token for the trustee")
	trustToken, r, err := issue(o, trustee(t.TrusteePassword), scope(trustID))
	if err != nil {
		return out, err
	}
	if r.Status == http.StatusCreated {
		o.Extra = tokenFacts(r)
	}
	o = step("the trust-scoped token lists volumes")
	if r, err := c.DoWithToken(ctx, trustToken, rig.Volume, "GET", "/volumes", "3.0", nil); err != nil {
		return out, err
	} else {
		errorOf(o, r)
	}
	if _, _, err := issue(step("trust-scoped token for the trustor"), map[string]any{"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{"id": c.UserID, "password": t.TrustorPassword}}}, scope(trustID)); err != nil {
		return out, err
	}
	if _, _, err := issue(step("trust-scoped token, unknown trust"), trustee(t.TrusteePassword), scope(strings.ReplaceAll(rig.NewUUID(), "-", ""))); err != nil {
		return out, err
	}
	if _, err := call(step("trust delete by the trustee"), t.Trustee.Token, "DELETE", "/OS-TRUST/trusts/"+trustID, nil); err != nil {
		return out, err
	}
	if _, err := call(step("trust delete"), c.Token, "DELETE", "/OS-TRUST/trusts/"+trustID, nil); err != nil {
		return out, err
	}
	if err := validate(step("the trust's token after the delete"), trustToken); err != nil {
		return out, err
	}
	if _, _, err := issue(step("trust-scoped token after the delete"), trustee(t.TrusteePassword), scope(trustID)); err != nil {
		return out, err
	}
	return out, nil
}

// who names an id relative to the scenario's two users or projects.
func who(id, trustor, trustee string) string {
	switch id {
	case trustor:
		return "trustor's"
	case trustee:
		return "trustee's"
	case "":
		return "none"
	}
	return "other"
}
