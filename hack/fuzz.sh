#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time ($1, default 10s)
# over its seed corpus. CI uses it to keep the fuzzers compiling and to catch
# the shallow crashes quickly; long fuzzing runs are done by hand.
#
# The seed corpus always runs as plain tests first (go test -run), so a seed
# that fails is a failure whatever happens next. Under CPU load Go's fuzz
# coordinator can end a time-boxed run with "context deadline exceeded"
# although no input failed (it failed once in five `make test` runs on the
# shared 2-core host); such a run is reported and not counted as a failure.
# A real finding (a failing seed, or a failing input written under
# testdata/fuzz) always fails the step.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
found=0 tolerated=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  pkg=./$(dirname "$file")
  found=$((found + 1))
  go test -count=1 -run "^${name}\$" "$pkg" >/dev/null || { echo "fuzz: $pkg $name: seed corpus FAILED"; go test -count=1 -run "^${name}\$" "$pkg"; exit 1; }
  echo "fuzz: $pkg $name ($budget)"
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$budget" "$pkg" >"$out" 2>&1; then
    cat "$out"
    continue
  fi
  cat "$out"
  if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
    tolerated=$((tolerated + 1))
    echo "fuzz: $pkg $name: the fuzz coordinator hit its deadline under load with no failing input; seeds passed, not counted as a failure"
    continue
  fi
  echo "fuzz: $pkg $name FAILED"
  exit 1
done < <(git ls-files '*_test.go' | xargs grep -H -E '^func Fuzz[A-Za-z0-9_]*\(' || true)
note=""
[[ $tolerated == 0 ]] || note=" ($tolerated ended by the fuzz coordinator's deadline, seeds passed)"
echo "fuzz: $found targets$note"
