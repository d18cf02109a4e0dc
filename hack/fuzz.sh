#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time ($1, default 10s)
# over its seed corpus. CI uses it to keep the fuzzers compiling and to catch
# the shallow crashes quickly; long fuzzing runs are done by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
found=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  pkg=./$(dirname "$file")
  found=$((found + 1))
  echo "fuzz: $pkg $name ($budget)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$budget" "$pkg"
done < <(git ls-files '*_test.go' | xargs grep -H -E '^func Fuzz[A-Za-z0-9_]*\(' || true)
echo "fuzz: $found targets"
