#!/usr/bin/env bash
# make e2e-openstack: the driver end to end against a real OpenStack Zed
# (../shared/tools/openstack-rig). Brings the rig up (idempotent), writes
# cloud.conf from what up.sh prints, creates the two servers that act as
# nodes, runs tests/e2e/openstack/... and takes the rig down again, leaving
# no server or volume behind.
#
# Env: RIG_DIR (rig scripts), RIG_STATE (default /var/lib/openstack-rig),
# E2E_KEEP_RIG=1 (leave the rig running), E2E_RUN (go test -run filter),
# E2E_WORK (output directory, default /tmp/cinder-csi-e2e-openstack).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for d in "${RIG_DIR:-}" "$ROOT/../shared/tools/openstack-rig" /work/shared/tools/openstack-rig; do
  if [[ -n $d && -x $d/up.sh ]]; then RIG_DIR=$(cd "$d" && pwd); break; fi
done
if [[ -z ${RIG_DIR:-} || ! -x $RIG_DIR/up.sh ]]; then
  echo "e2e-openstack: SKIP: openstack-rig scripts not found (../shared/tools/openstack-rig or /work/shared/tools/openstack-rig)"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "e2e-openstack: SKIP: needs root (the rig installs packages; the node service mounts the hot-plugged devices)"
  exit 0
fi

export RIG_STATE=${RIG_STATE:-/var/lib/openstack-rig}
WORK=${E2E_WORK:-/tmp/cinder-csi-e2e-openstack}
mkdir -p "$WORK"
PY=/usr/bin/python3
T0=$SECONDS
log() { echo "[e2e-openstack $(date +%T) +$((SECONDS - T0))s] $*"; }

osc() { (set +u; . "$RIG_STATE/openrc"; openstack "$@"); }

cleanup() {
  local rc=$?
  set +e
  log "cleanup: servers, volumes, snapshots, backups left by the tests"
  if [[ -f $RIG_STATE/openrc ]]; then
    for s in $(osc server list -f value -c ID -c Name 2>/dev/null | awk '$2 ~ /^e2e-node/ {print $1}'); do
      osc server delete --wait "$s"
    done
    # Anything the tests made carries one of these name prefixes; a leak
    # is a test failure, reported here after it is removed.
    leaked=0
    for b in $(osc volume backup list -f value -c ID -c Name 2>/dev/null | awk '$2 ~ /^(e2e-|diff-|pvc-|sanity|csi)/ {print $1}'); do
      leaked=1; log "LEAK: backup $b"; osc volume backup delete --force "$b"
    done
    for s in $(osc volume snapshot list -f value -c ID 2>/dev/null); do
      leaked=1; log "LEAK: snapshot $s"; osc volume snapshot delete "$s"
    done
    sleep 2
    for v in $(osc volume list -f value -c ID 2>/dev/null); do
      leaked=1; log "LEAK: volume $v"; osc volume delete --force "$v"
    done
    [[ $leaked == 0 ]] || { [[ $rc != 0 ]] || rc=1; }
    $PY "$RIG_DIR/rig_attach.py" leftovers || { log "LEAK: host-side attach leftovers"; [[ $rc != 0 ]] || rc=1; }
  fi
  if [[ ${E2E_KEEP_RIG:-0} != 1 ]]; then
    log "rig down"
    "$RIG_DIR/down.sh" >"$WORK/down.log" 2>&1 || log "down.sh failed, see $WORK/down.log"
  fi
  log "done (rc=$rc, $((SECONDS - T0))s)"
  exit $rc
}
trap cleanup EXIT

log "rig up ($RIG_DIR; log $WORK/up.log)"
nice -n 5 "$RIG_DIR/up.sh" >"$WORK/up.log" 2>&1 || { tail -30 "$WORK/up.log"; exit 1; }
grep -E '^up.sh total' "$WORK/up.log" || true

# cloud.conf from up.sh's output: the block after its cloud.conf banner.
awk '/^----- cloud.conf/ {on=1; next} /^-----/ {on=0} on' "$WORK/up.log" >"$WORK/cloud.conf"
grep -q '^auth-url' "$WORK/cloud.conf" || { echo "no cloud.conf in up.sh's output"; exit 1; }
ini() { awk -F' *= *' -v k="$1" '$1 == k {print $2; exit}' "$WORK/cloud.conf"; }
export E2E_CLOUD_CONF=$WORK/cloud.conf E2E_AUTH_URL=$(ini auth-url) E2E_USERNAME=$(ini username) \
  E2E_PASSWORD=$(ini password) E2E_PROJECT=$(ini tenant-name)

log "creating the node servers"
node() {
  local id
  id=$(osc server show -f value -c id "$1" 2>/dev/null || true)
  if [[ -z $id ]]; then
    id=$(osc --os-compute-api-version 2.79 server create --flavor rig.tiny --image rig-tiny --nic none --wait \
      -f value -c id "$1" | grep -Eo '[0-9a-f]{8}-[0-9a-f-]{27}' | tail -1)
  fi
  echo "$id"
}
E2E_NODE1_ID=$(node e2e-node1)
E2E_NODE2_ID=$(node e2e-node2)
export E2E_NODE1_ID E2E_NODE2_ID
# Only node1 gets real devices, as on a cloud where a node never sees
# another server's disks.
$PY "$RIG_DIR/rig_attach.py" node e2e-node1 >/dev/null
log "node1 $E2E_NODE1_ID, node2 $E2E_NODE2_ID"

export CINDER_CSI_E2E_OPENSTACK=1 RIG_DIR E2E_DIFF_REPORT=$WORK/diff.md E2E_BENCH_REPORT=$WORK/bench.md
# -p 1: the packages share one project and its quota, which some tests lower.
set +e
go test -count=1 -p 1 -timeout 45m -v ${E2E_RUN:+-run "$E2E_RUN"} ./tests/e2e/openstack/... 2>&1 | tee "$WORK/go-test.log" |
  grep -E '^(=== RUN|--- |PASS|FAIL|ok|Ran |SUCCESS|    [a-z_]+\.go:[0-9]+: (diff|bench|sanity|LEAK))' | grep -v '^=== RUN'
rc=${PIPESTATUS[0]}
if [[ -z ${E2E_RUN:-} || ${E2E_BENCH:-} == 1 ]]; then
  log "benchmark on real Cinder (report $WORK/bench.md)"
  go test -count=1 -run '^$' -bench . -benchtime ${E2E_BENCH_N:-5}x -timeout 30m ./tests/e2e/openstack/bench/ 2>&1 |
    tee "$WORK/bench.log" | grep -E '^(Benchmark|ok|FAIL|---)'
  [[ ${PIPESTATUS[0]} == 0 ]] || rc=1
fi
set -e
"$ROOT/hack/sanity-summary.sh" "$WORK/go-test.log" || true
[[ -f $WORK/diff.md ]] && tail -1 "$WORK/diff.md"
log "go test rc=$rc; full log $WORK/go-test.log"
exit $rc
