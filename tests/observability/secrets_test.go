package observability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cinder-csi/cinder-csi/pkg/logging"
	"github.com/cinder-csi/cinder-csi/pkg/openstack"
	"github.com/cinder-csi/cinder-csi/pkg/openstack/emulator"
)

// Every secret the plugin handles, each a unique marker. None may appear in
// a log line, an error returned to the caller or the /metrics output.
const (
	markPassword    = "MARKpasswordQ7w2"     // cloud.conf password
	markAppCred     = "MARKappcredSecretZ4k" // cloud.conf application-credential-secret
	markBadAppCred  = "MARKbadAppcredP9x"    // a wrong application credential secret (401)
	markToken       = "MARKtokenV3n8"        // cloud.conf token, unknown to Keystone (401)
	markCSISecret   = "MARKcsiSecretH5j"     // CSI request secrets
	markPanicValue  = "MARKpanicValueR2d"    // built into a panic value, as careless code might
	markNewPassword = "MARKrotatedPwdL6c"    // the password Keystone has while ours is stale
)

var allMarks = []string{markPassword, markAppCred, markBadAppCred, markToken, markCSISecret, markPanicValue, markNewPassword}

// panicky panics in two handlers: once with a value built from the request
// secrets, once with a runtime error.
type panicky struct{ csi.ControllerServer }

func (p panicky) ControllerModifyVolume(_ context.Context, req *csi.ControllerModifyVolumeRequest) (*csi.ControllerModifyVolumeResponse, error) {
	panic(fmt.Sprintf("%s with secrets %v", markPanicValue, req.GetSecrets()))
}

func (p panicky) ControllerGetVolume(_ context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	var m map[string]string
	m[req.GetVolumeId()] = markPanicValue //nolint:staticcheck // SA5000: the nil-map panic is the runtime error under test
	return nil, nil
}

func secretsConf(e *emulator.Emulator) string {
	e.SetUserPassword("demo", markPassword)
	acID := e.AddApplicationCredential("demo", "demo", "observability", markAppCred)
	conf := e.CloudConf("Global", "demo")
	conf += fmt.Sprintf("\n[Global \"appcred\"]\nauth-url = %s\napplication-credential-id = %s\napplication-credential-secret = %s\nregion = RegionOne\n",
		e.AuthURL(), acID, markAppCred)
	return conf
}

// badConfs are clouds Keystone refuses (401): a wrong application
// credential secret, a token it does not know. The plugin authenticates
// at start-up, so these fail there.
func badConfs(e *emulator.Emulator) map[string]string {
	acID := e.AddApplicationCredential("demo", "demo", "observability-bad", markAppCred+"-other")
	return map[string]string{
		"badcred": fmt.Sprintf("[Global \"badcred\"]\nauth-url = %s\napplication-credential-id = %s\napplication-credential-secret = %s\nregion = RegionOne\n",
			e.AuthURL(), acID, markBadAppCred),
		"token": fmt.Sprintf("[Global \"token\"]\nauth-url = %s\ntoken = %s\ntenant-name = demo\ndomain-name = Default\nregion = RegionOne\n",
			e.AuthURL(), markToken),
	}
}

// TestSecretsNeverLeak runs the plugin at -v=10 in both log formats
// through authentication failures (first authentication and
// re-authentication after the token expired), injected 500/503/429 with
// retries, and panics the interceptor recovers, then looks for every
// secret marker in the logs, the errors and /metrics.
func TestSecretsNeverLeak(t *testing.T) {
	for _, format := range []string{logging.FormatText, logging.FormatJSON} {
		t.Run(format, func(t *testing.T) {
			logs := captureLogs(t, format, 10)
			s := startStack(t, stackOptions{
				emu: emulator.Options{
					Servers:  []emulator.ServerSpec{{ID: nodeID, Name: "obs-node", AZ: "nova"}},
					TokenTTL: 2 * time.Second,
					Seed:     9,
				},
				conf:           secretsConf,
				node:           true,
				wrapController: func(c csi.ControllerServer) csi.ControllerServer { return panicky{c} },
			})
			var errs []string
			note := func(step string, err error) {
				if err != nil {
					errs = append(errs, step+": "+err.Error())
					t.Logf("%s: %v", step, err)
				}
			}
			secrets := func(cloud string) map[string]string {
				return map[string]string{"cloud": cloud, "password": markCSISecret, "application-credential-secret": markCSISecret, "token": markCSISecret}
			}
			vc := mountCap("ext4")
			create := func(name, cloud string) string {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				r, err := s.ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
					VolumeCapabilities: []*csi.VolumeCapability{vc}, Secrets: secrets(cloud)})
				note("CreateVolume "+name, err)
				return r.GetVolume().GetVolumeId()
			}
			remove := func(id, cloud string) {
				if id == "" {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := s.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: secrets(cloud)})
				note("DeleteVolume "+id, err)
			}

			// Password and application credential authentication succeed.
			v1 := create("pvc-secrets-password", "")
			v2 := create("pvc-secrets-appcred", "appcred")
			if v1 == "" || v2 == "" {
				t.Fatalf("the clouds with good credentials failed: %v", errs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pub, err := s.ctrl.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: v1, NodeId: nodeID,
				VolumeCapability: vc, Secrets: secrets("")})
			note("ControllerPublishVolume", err)

			// 401 on the first authentication, at start-up as in the
			// plugin's build: the error is what main prints.
			for cloud, conf := range badConfs(s.emu) {
				path := filepath.Join(s.work, cloud+".conf")
				if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := openstack.NewClouds(ctx, []string{path}, openstack.Options{Observer: s.m, ReloadInterval: -1})
				if err == nil {
					t.Errorf("cloud %s authenticated with a bad secret", cloud)
				}
				note("NewClouds "+cloud, err)
			}
			// 401 on re-authentication: the token expires while Keystone
			// holds another password.
			s.emu.SetUserPassword("demo", markNewPassword)
			time.Sleep(2100 * time.Millisecond)
			if id := create("pvc-secrets-stale", ""); id != "" {
				t.Errorf("re-authentication with a stale password succeeded")
			}
			s.emu.SetUserPassword("demo", markPassword)

			// Retries: injected 500, 503 and 429 on every service.
			s.emu.SetFaults(emulator.Faults{ErrorRate: 0.3, RateLimitRate: 0.1})
			var faulty []string
			for i := range 3 {
				faulty = append(faulty, create(fmt.Sprintf("pvc-secrets-faults-%d", i), "appcred"))
			}
			// A 429 for certain: polls are sent once (their schedule is
			// the retry), so the random 429s above may all land on polls
			// and none be retried. A bucket of one request per second
			// answers the create's POST, right after its lookup, with
			// 429 and a Retry-After the retry policy honours.
			s.emu.SetFaults(emulator.Faults{RateLimitRPS: 1})
			faulty = append(faulty, create("pvc-secrets-rate-limited", "appcred"))
			s.emu.SetFaults(emulator.Faults{})

			// Panics, one with the secrets in its value.
			_, err = s.ctrl.ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{VolumeId: v1, Secrets: secrets(""),
				MutableParameters: map[string]string{"type": "ssd"}})
			if status.Code(err) != codes.Internal {
				t.Errorf("panicking ControllerModifyVolume = %v, want Internal", err)
			}
			note("ControllerModifyVolume", err)
			_, err = s.ctrl.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: v1})
			if status.Code(err) != codes.Internal {
				t.Errorf("panicking ControllerGetVolume = %v, want Internal", err)
			}
			note("ControllerGetVolume", err)

			// Node requests carry secrets too; these fail validation.
			_, err = s.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "../bad", StagingTargetPath: "/staging",
				VolumeCapability: vc, PublishContext: pub.GetPublishContext(), Secrets: secrets("")})
			note("NodeStageVolume", err)
			_, err = s.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "../bad", TargetPath: "/target",
				VolumeCapability: vc, Secrets: secrets("")})
			note("NodePublishVolume", err)

			// Clean up through the same secrets.
			_, err = s.ctrl.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: v1, NodeId: nodeID, Secrets: secrets("")})
			note("ControllerUnpublishVolume", err)
			remove(v1, "")
			remove(v2, "appcred")
			for _, id := range faulty {
				remove(id, "appcred")
			}

			_, metricsBody := s.get("/metrics")
			samples := parseExposition(t, metricsBody)
			klogOut := logs.String()

			// The run did what it claims: requests logged (stripped),
			// authentication refused, retries made, panics recovered.
			for _, want := range []string{"***stripped***", "OpenStack API call", "CSI handler panicked", "withheld", "nil map"} {
				if !strings.Contains(klogOut, want) {
					t.Errorf("logs lack %q: the run did not exercise what it should", want)
				}
			}
			if n, _ := find(samples, "openstack_api_requests_total", labels("operation", "token_issue", "code", "401")); n < 3 {
				t.Errorf("401 on token_issue = %v, want ≥ 3 (bad application credential, unknown token, stale password)", n)
			}
			for _, reason := range []string{"5xx", "429"} {
				if n, _ := find(samples, "openstack_api_request_retries_total", labels("reason", reason)); n < 1 {
					t.Errorf("no retry for %s recorded", reason)
				}
			}
			if n, _ := find(samples, "cinder_csi_rpc_requests_total", labels("method", "ControllerModifyVolume", "code", "Internal")); n != 1 {
				t.Errorf("recovered panics in ControllerModifyVolume = %v, want 1", n)
			}

			for _, mark := range allMarks {
				if strings.Contains(klogOut, mark) {
					t.Errorf("secret marker %s appears in the logs", mark)
				}
				for _, e := range errs {
					if strings.Contains(e, mark) {
						t.Errorf("secret marker %s appears in an error: %s", mark, e)
					}
				}
				if strings.Contains(metricsBody, mark) {
					t.Errorf("secret marker %s appears in /metrics", mark)
				}
			}
			if len(errs) == 0 {
				t.Error(errors.New("no call failed: the auth failures and panics did not happen"))
			}
		})
	}
}
