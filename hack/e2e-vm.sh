#!/usr/bin/env bash
# e2e-vm.sh - `make e2e-vm`: the Cinder node suite with cinder-csi-plugin in
# a vm-rig guest (tests/e2e/README.md, "## vm").
#
#  1. builds the vm-rig (VM_RIG_DIR, else ../shared/tools/vm-rig next to the
#     repository, else /work/shared/tools/vm-rig) with its idempotent
#     build.sh (1-2 s warm);
#  2. runs, one package after the other (each boots its own guest):
#     tests/vmrig (the rig package's own check), tests/e2e/vm/node (the
#     node scenarios, which discovery path served each) and
#     tests/e2e/vm/sanity (csi-sanity's Node Service specs), and the Manila
#     node's: tests/e2e/manilavm/nfs (two guests on the emulator's NFS
#     export) and tests/e2e/manilavm/sanity (csi-sanity, node in a guest),
#     and tests/e2e/peerpod (two guests as peer-pod VMs, ~2 min),
#     with CINDER_CSI_E2E_VM=1, the whole run bounded by E2E_VM_TIMEBOX
#     seconds (default 1500: the Cinder suites ~4-6 min, the Manila ones
#     ~3-9 min under load; each suite has its own time box inside): past
#     it the run is stopped, the guests it started too, and it reports
#     SKIPPED (exit 0);
#  3. prints a summary; the full log is bin/e2e-vm.log.
#
# Not root, no QEMU, no vm-rig or a failed build.sh: skips with the reason
# and exits 0. The tests stop their guests on the way out (tests/vmrig
# registers the stop with t.Cleanup); guests are named vmt-*, vmn-*.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p bin
LOG=bin/e2e-vm.log
TIMEBOX=${E2E_VM_TIMEBOX:-1500}

skip() { echo "e2e-vm SKIPPED: $*"; exit 0; }
[[ $(id -u) == 0 ]] || skip "needs root (QEMU guests, loop devices)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
rig=""
for d in "${VM_RIG_DIR:-}" "$ROOT/../shared/tools/vm-rig" /work/shared/tools/vm-rig; do
	if [[ -n $d && -x $d/vm.py ]]; then rig=$(cd "$d" && pwd); break; fi
done
[[ -n $rig ]] || skip "vm-rig not found (set VM_RIG_DIR)"

t0=$SECONDS
if ! timeout 600 "$rig/build.sh" >bin/vm-rig-build.log 2>&1; then
	echo "e2e-vm SKIPPED: the vm-rig's build.sh failed; last lines of bin/vm-rig-build.log:"
	tail -5 bin/vm-rig-build.log
	exit 0
fi
echo "e2e-vm: vm-rig build.sh $((SECONDS - t0)) s"

# tests/vmrig appends the name of every guest it starts to this file, so a
# run stopped by the time box (its tests killed, no t.Cleanup) can stop them.
started=$(mktemp /tmp/e2e-vm-guests-XXXXXX)
trap 'rm -f "$started"' EXIT

t1=$SECONDS
rc=0
# timeout signals the whole process group: go test and the test binaries.
CINDER_CSI_E2E_VM=1 VM_RIG_DIR=$rig VM_RIG_NO_BUILD=1 VM_RIG_STARTED_LOG=$started timeout "$TIMEBOX" \
	go test -count=1 -p 1 -v -timeout "$((TIMEBOX + 60))s" ./tests/vmrig/ ./tests/e2e/vm/... ./tests/e2e/manilavm/... ./tests/e2e/peerpod/ >"$LOG" 2>&1 || rc=$?
echo "e2e-vm: suites $((SECONDS - t1)) s (rc=$rc; log $LOG)"
grep -E '^(--- |    --- |ok|FAIL)|Ran [0-9]+ of|SUCCESS!|FAIL!|^\s+\| .* \| [0-9.]+ s \||online ext4 growth:' "$LOG" || true
if [[ $rc == 124 ]]; then
	while read -r g; do
		[[ -d ${VM_RIG_STATE:-/var/lib/vm-rig}/vms/$g ]] && { "$rig/vm.py" stop "$g" --rm || true; }
	done <"$started"
	echo "e2e-vm SKIPPED: the suites did not finish within the ${TIMEBOX}s time box (E2E_VM_TIMEBOX); see $LOG"
	exit 0
fi
exit "$rc"
