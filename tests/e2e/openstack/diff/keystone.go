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
func runKeystone(ctx context.Context, t KeystoneTarget, logf func(string, ...any)) ([]Obs, error) {
	kr := &keystoneRun{ctx: ctx, t: t, c: t.Trustor, logf: logf, prefix: "diff-" + rig.NewUUID()[:8] + "-"}
	defer kr.cleanup()
	err := runPhases(kr.applicationCredentialPhase, kr.trustPhase)
	return kr.out, err
}

// keystoneRun is one run of the Keystone scenario on one cloud: the steps
// it observed and the credentials and trusts it made (deleted by cleanup).
type keystoneRun struct {
	ctx    context.Context
	t      KeystoneTarget
	c      *rig.Client // the trustor
	logf   func(string, ...any)
	prefix string
	out    []Obs

	creds, trusts []string
}

func (kr *keystoneRun) cleanup() {
	c := kr.c
	for _, id := range kr.creds {
		_, _ = c.Do(kr.ctx, rig.Identity, "DELETE", "/users/"+c.UserID+"/application_credentials/"+id, "", nil)
	}
	for _, id := range kr.trusts {
		_, _ = c.Do(kr.ctx, rig.Identity, "DELETE", "/OS-TRUST/trusts/"+id, "", nil)
	}
}

func (kr *keystoneRun) step(name string) *Obs {
	kr.out = append(kr.out, Obs{Step: "keystone: " + name})
	return &kr.out[len(kr.out)-1]
}

// call sends one Keystone request with token for step o and records its
// answer.
func (kr *keystoneRun) call(o *Obs, token, method, path string, body any) (*rig.Response, error) {
	r, err := kr.c.DoWithToken(kr.ctx, token, rig.Identity, method, path, "", body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Step, err)
	}
	errorOf(o, r)
	kr.logf("%s %s: %s %s → %d %s", kr.t.Name, o.Step, method, path, r.Status, truncate(string(r.Body)))
	return r, nil
}

// simple is a step of one call.
func (kr *keystoneRun) simple(name, token, method, path string, body any) error {
	_, err := kr.call(kr.step(name), token, method, path, body)
	return err
}

// validate asks whether a token is still good (GET /v3/auth/tokens).
func (kr *keystoneRun) validate(o *Obs, subject string) error {
	c := kr.c
	req, err := http.NewRequestWithContext(kr.ctx, http.MethodGet, c.Identity+"/auth/tokens", nil)
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
	kr.logf("%s %s: GET /auth/tokens → %d %s", kr.t.Name, o.Step, resp.StatusCode, truncate(string(body[:n])))
	return nil
}

// issue asks for a token for identity in scope (none when nil).
func (kr *keystoneRun) issue(o *Obs, identity, scope map[string]any) (string, *rig.Response, error) {
	auth := map[string]any{"identity": identity}
	if scope != nil {
		auth["scope"] = scope
	}
	r, err := kr.call(o, "", "POST", "/auth/tokens", map[string]any{"auth": auth})
	if err != nil {
		return "", nil, err
	}
	return r.Header.Get("X-Subject-Token"), r, nil
}

// issueStep is a step that only asks for a token.
func (kr *keystoneRun) issueStep(name string, identity, scope map[string]any) error {
	_, _, err := kr.issue(kr.step(name), identity, scope)
	return err
}

// tokenFacts names a token's project, user and trust relative to the
// scenario's two users.
func (kr *keystoneRun) tokenFacts(r *rig.Response) string {
	c, trustee := kr.c, kr.t.Trustee
	tok, _ := r.JSON()["token"].(map[string]any)
	var facts []string
	if p, _ := tok["project"].(map[string]any); p != nil {
		facts = append(facts, "project="+who(str(p["id"]), c.ProjectID, trustee.ProjectID))
	}
	if u, _ := tok["user"].(map[string]any); u != nil {
		facts = append(facts, "user="+who(str(u["id"]), c.UserID, trustee.UserID))
	}
	if tr, _ := tok["OS-TRUST:trust"].(map[string]any); tr != nil {
		facts = append(facts, fmt.Sprintf("trust impersonation=%v", tr["impersonation"]))
	}
	return strings.Join(facts, " ")
}

// applicationCredentialPhase creates an application credential, uses it,
// and checks that deleting it revokes its token.
func (kr *keystoneRun) applicationCredentialPhase() error {
	c, prefix := kr.c, kr.prefix
	credPath := "/users/" + c.UserID + "/application_credentials"
	secret := "diff-" + rig.NewUUID()

	o := kr.step("application credential create")
	r, err := kr.call(o, c.Token, "POST", credPath, map[string]any{"application_credential": map[string]any{"name": prefix + "ac", "secret": secret}})
	if err != nil {
		return err
	}
	ac, _ := r.JSON()["application_credential"].(map[string]any)
	credID := str(ac["id"])
	if credID != "" {
		kr.creds = append(kr.creds, credID)
		o.Extra = fmt.Sprintf("secret echoed=%v project=%s", ac["secret"] == secret, who(str(ac["project_id"]), c.ProjectID, kr.t.Trustee.ProjectID))
	}
	if err := kr.simple("application credential with the same name", c.Token, "POST", credPath,
		map[string]any{"application_credential": map[string]any{"name": prefix + "ac"}}); err != nil {
		return err
	}
	if err := kr.simple("application credential for another user", c.Token, "POST", "/users/"+kr.t.Trustee.UserID+"/application_credentials",
		map[string]any{"application_credential": map[string]any{"name": prefix + "other"}}); err != nil {
		return err
	}
	o = kr.step("token from the application credential")
	acToken, r, err := kr.issue(o, map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"id": credID, "secret": secret}}, nil)
	if err != nil {
		return err
	}
	if r.Status == http.StatusCreated {
		o.Extra = kr.tokenFacts(r)
	}
	if err := kr.issueStep("token from a wrong secret", map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"id": credID, "secret": "not-" + secret}}, nil); err != nil {
		return err
	}
	if err := kr.simple("application credential token creates another", acToken, "POST", credPath,
		map[string]any{"application_credential": map[string]any{"name": prefix + "nested"}}); err != nil {
		return err
	}
	if err := kr.simple("application credential delete", c.Token, "DELETE", credPath+"/"+credID, nil); err != nil {
		return err
	}
	if err := kr.validate(kr.step("its token after the delete"), acToken); err != nil {
		return err
	}
	return kr.simple("application credential delete again", c.Token, "DELETE", credPath+"/"+credID, nil)
}

// trustPhase creates a trust, uses its token, checks the refusals, and
// that deleting the trust revokes its token.
func (kr *keystoneRun) trustPhase() error {
	c, t := kr.c, kr.t
	o := kr.step("trust create")
	trustBody := func(trustor string) map[string]any {
		return map[string]any{"trust": map[string]any{"trustor_user_id": trustor, "trustee_user_id": t.Trustee.UserID,
			"project_id": c.ProjectID, "impersonation": false, "roles": []any{map[string]any{"name": "member"}}}}
	}
	r, err := kr.call(o, c.Token, "POST", "/OS-TRUST/trusts", trustBody(c.UserID))
	if err != nil {
		return err
	}
	tr, _ := r.JSON()["trust"].(map[string]any)
	trustID := str(tr["id"])
	if trustID != "" {
		kr.trusts = append(kr.trusts, trustID)
		o.Extra = fmt.Sprintf("impersonation=%v expires_at=%v", tr["impersonation"], tr["expires_at"])
	}
	if err := kr.simple("trust create naming another trustor", c.Token, "POST", "/OS-TRUST/trusts", trustBody(t.Trustee.UserID)); err != nil {
		return err
	}
	trustee := map[string]any{"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{"id": t.Trustee.UserID, "password": t.TrusteePassword}}}
	scope := func(id string) map[string]any { return map[string]any{"OS-TRUST:trust": map[string]any{"id": id}} }
	o = kr.step("trust-scoped token for the trustee")
	trustToken, r, err := kr.issue(o, trustee, scope(trustID))
	if err != nil {
		return err
	}
	if r.Status == http.StatusCreated {
		o.Extra = kr.tokenFacts(r)
	}
	o = kr.step("the trust-scoped token lists volumes")
	r, err = c.DoWithToken(kr.ctx, trustToken, rig.Volume, "GET", "/volumes", "3.0", nil)
	if err != nil {
		return err
	}
	errorOf(o, r)
	if err := kr.issueStep("trust-scoped token for the trustor", map[string]any{"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{"id": c.UserID, "password": t.TrustorPassword}}}, scope(trustID)); err != nil {
		return err
	}
	if err := kr.issueStep("trust-scoped token, unknown trust", trustee, scope(strings.ReplaceAll(rig.NewUUID(), "-", ""))); err != nil {
		return err
	}
	if err := kr.simple("trust delete by the trustee", t.Trustee.Token, "DELETE", "/OS-TRUST/trusts/"+trustID, nil); err != nil {
		return err
	}
	if err := kr.simple("trust delete", c.Token, "DELETE", "/OS-TRUST/trusts/"+trustID, nil); err != nil {
		return err
	}
	if err := kr.validate(kr.step("the trust's token after the delete"), trustToken); err != nil {
		return err
	}
	return kr.issueStep("trust-scoped token after the delete", trustee, scope(trustID))
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
