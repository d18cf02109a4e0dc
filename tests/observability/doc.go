// Package observability holds the end-to-end tests of issue 9: the
// /metrics series after a full volume lifecycle, secrets kept out of logs,
// errors and metrics at the highest verbosity, and OpenStack request ids in
// the logs of a failed operation. The tests wire the plugin in-process the
// way cmd/cinder-csi-plugin does (the real cloud layer over HTTP to the
// emulator, the real gRPC server and interceptor, the /metrics handler) and
// capture klog's output in text and JSON formats.
package observability
