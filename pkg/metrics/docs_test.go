package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var metricName = regexp.MustCompile(`\b(?:openstack_api|cinder_csi)_[a-z_]+\b`)

// registeredNames returns every metric family New registers (after one
// observation each, since vectors without children are not gathered).
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New()
	m.ObserveRequest("volumev3", "volume_get", 500, time.Second)
	m.ObserveRetry("volumev3", "volume_get", "5xx")
	m.ObserveRateLimitWait("volumev3", time.Second)
	m.ObserveTokenRenewal("")
	m.ObserveWait("volume_wait", time.Second, "done")
	m.ObserveRPC("Probe", "OK", time.Second)
	m.ObserveDeviceDiscovery(DiscoveryByID, time.Second, os.ErrNotExist)
	m.ObserveFormat("ext4", time.Second, os.ErrNotExist)
	m.ObserveMount(time.Second, os.ErrNotExist)
	m.StaleMount()
	m.SetKataRecordsFunc(func() int { return 0 })
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		if metricName.MatchString(f.GetName()) {
			names[f.GetName()] = true
		}
	}
	return names
}

func baseName(n string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		n = strings.TrimSuffix(n, suffix)
	}
	return n
}

// docs/metrics.md lists every metric, and docs/dashboard.json uses only
// metrics that exist.
func TestDocsAndDashboardMatchTheRegistry(t *testing.T) {
	registered := registeredNames(t)
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range registered {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	for _, file := range []string{"../../docs/metrics.md", "../../docs/dashboard.json"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(text), -1) {
			if !registered[baseName(name)] && !registered[name] {
				t.Errorf("%s refers to %s, which is not registered", file, name)
			}
		}
	}
}
