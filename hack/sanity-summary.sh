#!/usr/bin/env bash
# Prints the csi-sanity pass/skip/fail counts of each in-process run from a
# `go test -v ./tests/sanity/...` log, and fails when any run failed.
set -euo pipefail
log=${1:?usage: sanity-summary.sh <go test -v log>}
awk '
  /^    [a-z_]+\.go:[0-9]+: /           { note = $0; sub(/^ +[a-z_]+\.go:[0-9]+: /, "", note) }
  /^Ran [0-9]+ of [0-9]+ Specs/        { ran = $1 " " $2 " of " $4 " specs" }
  /^(SUCCESS|FAIL)! -- /               { sub(/^(SUCCESS|FAIL)! -- /, ""); counts = $0 }
  /^--- (PASS|FAIL|SKIP): TestSanity/  {
    if ($2 == "SKIP:") printf "sanity: %-24s skipped: %s\n", $3, note
    else printf "sanity: %-24s %s: %s (%s)\n", $3, ($2 == "PASS:" ? "passed" : "FAILED"), counts, ran
    ran = ""; counts = ""; note = ""
  }
' "$log"
if grep -qE '^(--- FAIL|FAIL|panic:)' "$log"; then
  echo "sanity: FAILED (full log: $log)"; exit 1
fi
echo "sanity: ok"
