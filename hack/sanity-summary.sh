#!/usr/bin/env bash
# Prints the csi-sanity pass/skip/fail counts from a `go test -v` log and
# fails when any spec failed.
set -euo pipefail
log=${1:?usage: sanity-summary.sh <go test -v log>}
grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$log" | sed 's/^/sanity: /' || true
grep -E '^(SUCCESS|FAIL)! .*Passed.*Failed' "$log" | sed 's/^/sanity: /' || true
if grep -qE '^(--- FAIL|FAIL)' "$log"; then
  echo "sanity: FAILED"; exit 1
fi
echo "sanity: ok"
