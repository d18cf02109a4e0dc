package diff

import "testing"

// TestNormalizeQuotaUsage: over-quota refusals compare equal when only
// the project's usage differs between the clouds.
func TestNormalizeQuotaUsage(t *testing.T) {
	pairs := [][2]string{
		{"Requested 5G, quota is 8G and 7G has been consumed.", "Requested 5G, quota is 6G and 5G has been consumed."},
		{"Maximum number of snapshots allowed (1) exceeded", "Maximum number of snapshots allowed (2) exceeded"},
	}
	for _, p := range pairs {
		if a, b := normalize(p[0]), normalize(p[1]); a != b {
			t.Errorf("normalize: %q != %q", a, b)
		}
	}
	if a, b := normalize("Requested 5G, quota is 8G and 7G has been consumed."), normalize("Requested 6G, quota is 8G and 7G has been consumed."); a == b {
		t.Error("the requested size must still be compared")
	}
}
