// Package version holds the driver version, set at link time.
package version

// Version is overwritten by -ldflags "-X .../pkg/version.Version=...".
var Version = "0.1.0-dev"
