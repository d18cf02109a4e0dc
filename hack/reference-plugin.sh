#!/usr/bin/env bash
# Builds the reference plugin the benchmarks compare with:
# cloud-provider-openstack's cinder-csi-plugin at REFERENCE_VERSION, from
# its module as the Go module proxy serves it, into $1 (default
# bin/reference-cinder-csi-plugin). `go install ...@version` cannot be
# used: it also asks the proxy for the module's version list, which it
# refuses (403). Exits non-zero, saying why, when it cannot build.
set -euo pipefail
out=${1:-bin/reference-cinder-csi-plugin}
version=${REFERENCE_VERSION:-v1.36.0}
mod=k8s.io/cloud-provider-openstack
dir=$(GOFLAGS=-mod=mod go mod download -json "$mod@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[[ -n $dir && -d $dir ]] || { echo "reference-plugin: $mod@$version could not be downloaded" >&2; exit 1; }
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"
(cd "$dir" && GOFLAGS=-mod=mod go build -o "$out" ./cmd/cinder-csi-plugin)
echo "reference-plugin: $out ($mod $version)"
