package openstack

import (
	"testing"
	"time"
)

// TestActionLogHintsUntilDone: a sent change hints the waits on its
// resource until one of them sees it done; a newer change is not
// forgotten by the end of a wait on an older one.
func TestActionLogHintsUntilDone(t *testing.T) {
	a := newActionLog()
	if h := a.hint(volumeKey("v")); h.Kind != "" {
		t.Fatalf("hint before any request: %+v", h)
	}
	at := time.Now()
	a.sent(volumeKey("v"), changeAttaching, at)
	h := a.hint(volumeKey("v"))
	if h.Kind != changeAttaching || !h.Since.Equal(at) {
		t.Fatalf("hint = %+v", h)
	}
	a.sent(volumeKey("v"), changeDetaching, at.Add(time.Second))
	a.done(volumeKey("v"), h) // the attach wait ends after the detach was sent
	if got := a.hint(volumeKey("v")).Kind; got != changeDetaching {
		t.Fatalf("after the older wait ended: %q, want the detach's hint", got)
	}
	a.done(volumeKey("v"), a.hint(volumeKey("v")))
	if got := a.hint(volumeKey("v")).Kind; got != "" {
		t.Fatalf("after its wait ended: %q, want none", got)
	}
	a.sent(snapshotKey("old"), changeCreating, at.Add(-2*actionTTL))
	if got := a.hint(snapshotKey("old")).Kind; got != "" {
		t.Fatalf("a change older than actionTTL still hints: %q", got)
	}
}
