package config

import (
	"sync"

	"k8s.io/klog/v2"
)

// logged holds the warnings this process has already logged. The Cinder
// plugin reads cloud.conf twice at startup (for the node's [BlockStorage]
// and [Metadata], and in the cloud layer for the controller), and the cloud
// layer reads it again on every change; a warning about the same key is
// worth one line, not one per read.
var logged = &warningLog{seen: map[string]bool{}}

type warningLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

// fresh returns the warnings not seen before, in order, and remembers them.
func (l *warningLog) fresh(warns []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, w := range warns {
		if !l.seen[w] {
			l.seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// LogWarnings logs each of Load's warnings (unknown keys and sections) once
// per process, however many times the files are read.
func LogWarnings(warns []string) {
	for _, w := range logged.fresh(warns) {
		klog.InfoS("Cloud config warning", "warning", w)
	}
}
