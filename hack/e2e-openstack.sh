#!/usr/bin/env bash
# make e2e-openstack: the driver end to end against a real OpenStack Zed
# (../shared/tools/openstack-rig). Brings the rig up (idempotent), writes
# cloud.conf from what up.sh prints, creates the two servers that act as
# nodes, runs tests/e2e/openstack/... and takes the rig down again, leaving
# no server or volume behind.
#
# Env: RIG_DIR (rig scripts), RIG_STATE (default /var/lib/openstack-rig),
# E2E_KEEP_RIG=1 (leave the rig running), E2E_RUN (go test -run filter),
# E2E_WORK (output directory, default /tmp/cinder-csi-e2e-openstack),
# E2E_K8S_OPENSTACK=0|1 (the k8s e2e flows on this cloud: on by default,
# only with =1 when E2E_RUN is set), E2E_RIG_UP=0 (the rig is already up and
# shared with others: neither up.sh nor down.sh runs, cloud.conf is
# $RIG_STATE/cloud.conf, the leak sweep only reports what is left in the e2e
# project (another session may be using it);
# implies E2E_KEEP_RIG=1), E2E_MANILA_UP_LOG (the log of a manila-up.sh that
# .ci/run started in the background: waited for, at most E2E_MANILA_WAIT
# seconds, default 420, until it ends with "manila rc="), E2E_LIBVIRT=0 (no
# libvirt compute: hack/rig-libvirt.sh adds one beside the rig's fake compute
# for tests/e2e/openstack/libvirtnode, time box E2E_LIBVIRT_TIMEOUT seconds,
# default 600; taken down with the rig).
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
[[ ${E2E_RIG_UP:-1} != 0 ]] || E2E_KEEP_RIG=1
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
    if [[ ${E2E_KEEP_RIG:-0} != 1 ]]; then
      for s in $(osc server list --all-projects -f value -c ID -c Name 2>/dev/null | awk '$2 ~ /^e2e-node/ {print $1}'); do
        osc server delete --wait "$s"
      done
    fi
    # Whatever the tests made is in the e2e project (or, by mistake, the
    # admin one); anything left there is a leak: reported, then removed.
    # On a shared rig (E2E_RIG_UP=0) only the e2e project is ours to sweep
    # (others' volumes in the admin project are not our leaks), and even
    # there another session's run may be in flight: what is found is
    # reported, not deleted, and does not fail the run.
    local lister=(osc) scope=(--all-projects) shared=0
    [[ ${E2E_RIG_UP:-1} != 0 ]] || { lister=(member); scope=(); shared=1; }
    sweep() { if [[ $shared == 1 ]]; then log "  (shared rig: left in place)"; else "$@"; fi; }
    leaked=0
    for b in $("${lister[@]}" volume backup list "${scope[@]}" -f value -c ID 2>/dev/null); do
      leaked=1; log "LEAK: backup $b"; sweep osc volume backup delete "$b"
    done
    for s in $("${lister[@]}" volume snapshot list "${scope[@]}" -f value -c ID 2>/dev/null); do
      leaked=1; log "LEAK: snapshot $s"; sweep osc volume snapshot delete --force "$s"
    done
    sleep 2
    for v in $("${lister[@]}" volume list "${scope[@]}" -f value -c ID 2>/dev/null); do
      leaked=1; log "LEAK: volume $v"; sweep osc volume delete --force "$v"
    done
    if [[ ${MANILA_UP:-0} == 1 ]]; then
      for s in $("${lister[@]}" share snapshot list "${scope[@]}" -f value -c ID 2>/dev/null); do
        leaked=1; log "LEAK: share snapshot $s"; sweep osc share snapshot delete "$s"
      done
      sleep 2
      for s in $("${lister[@]}" share list "${scope[@]}" -f value -c ID 2>/dev/null); do
        leaked=1; log "LEAK: share $s"; sweep osc share delete "$s"
      done
    fi
    [[ $leaked == 0 || $shared == 1 ]] || { [[ $rc != 0 ]] || rc=1; }
    $PY "$RIG_DIR/rig_attach.py" leftovers || { log "LEAK: host-side attach leftovers"; [[ $rc != 0 ]] || rc=1; }
  fi
  if [[ ${E2E_KEEP_RIG:-0} != 1 ]]; then
    # The libvirt compute talks to the rig's RabbitMQ and Ceph: down first.
    if [[ -e /var/lib/rig-libvirt/run/nova-compute.pid ]]; then
      log "libvirt compute down"
      timeout 300 "$ROOT/hack/rig-libvirt.sh" down >"$WORK/rig-libvirt-down.log" 2>&1 || log "rig-libvirt.sh down failed, see $WORK/rig-libvirt-down.log"
    fi
    # Manila runs on the rig's mon, MariaDB and RabbitMQ: down first.
    if [[ -x $RIG_DIR/manila/manila-down.sh && -d /var/lib/openstack-rig-manila ]]; then
      log "manila down"
      timeout 300 "$RIG_DIR/manila/manila-down.sh" >"$WORK/manila-down.log" 2>&1 || log "manila-down.sh failed, see $WORK/manila-down.log"
    fi
    log "rig down"
    "$RIG_DIR/down.sh" >"$WORK/down.log" 2>&1 || log "down.sh failed, see $WORK/down.log"
  fi
  log "done (rc=$rc, $((SECONDS - T0))s)"
  exit $rc
}
trap cleanup EXIT

if [[ ${E2E_RIG_UP:-1} == 0 ]]; then
  log "rig already up (E2E_RIG_UP=0): cloud.conf from $RIG_STATE/cloud.conf"
  cp "$RIG_STATE/cloud.conf" "$WORK/cloud.conf"
else
  log "rig up ($RIG_DIR; log $WORK/up.log)"
  nice -n 5 "$RIG_DIR/up.sh" >"$WORK/up.log" 2>&1 || { tail -30 "$WORK/up.log"; exit 1; }
  grep -E '^up.sh total' "$WORK/up.log" || true
  # cloud.conf from up.sh's output: the block after its cloud.conf banner.
  awk '/^----- cloud.conf/ {on=1; next} /^-----/ {on=0} on' "$WORK/up.log" >"$WORK/cloud.conf"
fi
grep -q '^auth-url' "$WORK/cloud.conf" || { echo "no cloud.conf in up.sh's output"; exit 1; }
ini() { awk -F' *= *' -v k="$1" '$1 == k {print $2; exit}' "$WORK/cloud.conf"; }
export E2E_AUTH_URL=$(ini auth-url) E2E_ADMIN_USERNAME=$(ini username) E2E_ADMIN_PASSWORD=$(ini password) \
  E2E_ADMIN_PROJECT=$(ini tenant-name)

# The driver runs as a plain member of its own project, as in production
# (an admin token changes Cinder's behaviour: no filter validation, every
# project visible). The admin credentials only lower and restore quotas.
export E2E_USERNAME=e2e E2E_PASSWORD=e2e-member-secret E2E_PROJECT=e2e
log "project $E2E_PROJECT, member user $E2E_USERNAME"
osc project show "$E2E_PROJECT" >/dev/null 2>&1 || osc project create --domain Default "$E2E_PROJECT" >/dev/null
osc user show "$E2E_USERNAME" >/dev/null 2>&1 ||
  osc user create --domain Default --project "$E2E_PROJECT" --password "$E2E_PASSWORD" "$E2E_USERNAME" >/dev/null
osc role add --project "$E2E_PROJECT" --user "$E2E_USERNAME" member
# Cinder's default quotas (10 volumes, 10 snapshots) are below what
# csi-sanity keeps at once.
osc quota set --volumes 100 --snapshots 100 --backups 100 --gigabytes 1000 "$E2E_PROJECT"
sed -e "s/^username = .*/username = $E2E_USERNAME/" -e "s/^password = .*/password = $E2E_PASSWORD/" \
  -e "s/^tenant-name = .*/tenant-name = $E2E_PROJECT/" "$WORK/cloud.conf" >"$WORK/cloud-member.conf"
export E2E_CLOUD_CONF=$WORK/cloud-member.conf
# Nova lets only admins boot an image-backed server on a zero-disk flavor
# such as rig.tiny: the member gets the same flavor with a 1 GB disk (the
# rig's fake compute driver never creates it).
osc flavor show e2e.tiny >/dev/null 2>&1 || osc flavor create --ram 128 --vcpus 1 --disk 1 e2e.tiny >/dev/null
member() { (set +u; . "$RIG_STATE/openrc"; export OS_USERNAME=$E2E_USERNAME OS_PASSWORD=$E2E_PASSWORD OS_PROJECT_NAME=$E2E_PROJECT; openstack "$@"); }

log "creating the node servers"
node() {
  local id
  id=$(member server show -f value -c id "$1" 2>/dev/null || true)
  if [[ -z $id ]]; then
    id=$(member --os-compute-api-version 2.79 server create --flavor e2e.tiny --image rig-tiny --nic none --wait \
      -f value -c id "$1" | grep -Eo '[0-9a-f]{8}-[0-9a-f-]{27}' | tail -1)
  fi
  echo "$id"
}
E2E_NODE1_ID=$(node e2e-node1)
E2E_NODE2_ID=$(node e2e-node2)
[[ -n $E2E_NODE1_ID && -n $E2E_NODE2_ID ]] || { echo "creating the node servers failed"; exit 1; }
export E2E_NODE1_ID E2E_NODE2_ID
# Only node1 gets real devices, as on a cloud where a node never sees
# another server's disks.
$PY "$RIG_DIR/rig_attach.py" node e2e-node1 >/dev/null
log "node1 $E2E_NODE1_ID, node2 $E2E_NODE2_ID"

# Manila (tools/openstack-rig/manila): .ci/run starts MANILA_NFS=1
# manila-up.sh in the background once the rig is up (~40 s warm, ~154 s
# fresh); wait for it here, bounded, then run the Manila tests only when
# its API answers. The tests skip themselves without Manila too.
MANILA_UP=0
if [[ -n ${E2E_MANILA_UP_LOG:-} ]]; then
  log "waiting for Manila (log $E2E_MANILA_UP_LOG, at most ${E2E_MANILA_WAIT:-420}s)"
  end=$((SECONDS + ${E2E_MANILA_WAIT:-420}))
  until grep -q '^manila rc=' "$E2E_MANILA_UP_LOG" 2>/dev/null || ((SECONDS >= end)); do sleep 5; done
  grep -E '^(manila-up.sh total|manila rc=)' "$E2E_MANILA_UP_LOG" 2>/dev/null || true
fi
manila_reason=""
if [[ ! -d /var/lib/openstack-rig-manila ]]; then
  manila_reason="Manila is not installed on the rig (run tools/openstack-rig/manila/manila-up.sh)"
elif ! $PY -c 'import urllib.request as u, urllib.error as e, sys
try: u.urlopen("http://127.0.0.1:8786/", timeout=10)
except e.HTTPError as x: sys.exit(x.code != 300)
except Exception: sys.exit(1)' 2>/dev/null; then
  manila_reason="manila-api does not answer on 127.0.0.1:8786"
elif [[ -n ${E2E_MANILA_UP_LOG:-} ]] && ! grep -q '^manila rc=0' "$E2E_MANILA_UP_LOG" 2>/dev/null; then
  manila_reason="manila-up.sh did not finish with rc=0 (see $E2E_MANILA_UP_LOG)"
fi
if [[ -z $manila_reason ]]; then
  MANILA_UP=1
  log "Manila is up: the Manila tests and differential run"
else
  log "Manila differential SKIPPED: $manila_reason"
fi
export MANILA_UP

# A libvirt nova-compute beside the rig's (hack/rig-libvirt.sh: real QEMU
# guests under TCG, volumes attached by Nova and libvirt over RBD) for the
# node plugin in a real instance (tests/e2e/openstack/libvirtnode). Cold
# (packages, libvirtd, images) ~3 min, warm ~45 s on a loaded machine.
E2E_LIBVIRT_SKIP=""
if [[ ${E2E_LIBVIRT:-1} == 0 ]]; then
  E2E_LIBVIRT_SKIP="libvirt node SKIPPED: E2E_LIBVIRT=0"
else
  log "libvirt compute (hack/rig-libvirt.sh up, at most ${E2E_LIBVIRT_TIMEOUT:-600}s; log $WORK/rig-libvirt.log)"
  set +e
  timeout "${E2E_LIBVIRT_TIMEOUT:-600}" nice -n 5 "$ROOT/hack/rig-libvirt.sh" up >"$WORK/rig-libvirt.log" 2>&1
  lrc=$?
  set -e
  if [[ $lrc == 0 ]]; then
    E2E_LIBVIRT_IMAGE=$(osc image show rig-libvirt -f value -c id) E2E_LIBVIRT_FLAVOR=$(osc flavor show rig.libvirt -f value -c id)
    export E2E_LIBVIRT_IMAGE E2E_LIBVIRT_FLAVOR
    grep '^rig-libvirt: UP' "$WORK/rig-libvirt.log" || true
  elif [[ $lrc == 124 ]]; then
    E2E_LIBVIRT_SKIP="libvirt node SKIPPED: rig-libvirt.sh up did not finish in ${E2E_LIBVIRT_TIMEOUT:-600}s (see $WORK/rig-libvirt.log)"
  else
    E2E_LIBVIRT_SKIP="libvirt node SKIPPED: $(grep -m1 '^rig-libvirt: CANNOT' "$WORK/rig-libvirt.log" || echo "rig-libvirt.sh up failed (rc=$lrc, see $WORK/rig-libvirt.log)")"
  fi
fi
if [[ -z $E2E_LIBVIRT_SKIP ]]; then E2E_LIBVIRT=1; else E2E_LIBVIRT=0; log "$E2E_LIBVIRT_SKIP"; fi
export E2E_LIBVIRT E2E_LIBVIRT_SKIP

rm -f "$WORK/diff.md" "$WORK/diff-keystone.md" "$WORK/diff-manila.md" "$WORK/bench.md"
export CINDER_CSI_E2E_OPENSTACK=1 RIG_DIR E2E_DIFF_REPORT=$WORK/diff.md E2E_DIFF_KEYSTONE_REPORT=$WORK/diff-keystone.md E2E_BENCH_REPORT=$WORK/bench.md \
  E2E_DIFF_MANILA_REPORT=$WORK/diff-manila.md
# -p 1: the packages share one project and its quota, which some tests lower.
set +e
go test -count=1 -p 1 -timeout 45m -v ${E2E_RUN:+-run "$E2E_RUN"} ./tests/e2e/openstack/... 2>&1 | tee "$WORK/go-test.log" |
  grep -E '^(=== RUN|--- |PASS|FAIL|ok|Ran |SUCCESS|    [a-z_]+\.go:[0-9]+: (diff|bench|sanity|LEAK|libvirt))' | grep -v '^=== RUN'
rc=${PIPESTATUS[0]}
if [[ -z ${E2E_RUN:-} || ${E2E_BENCH:-} == 1 ]]; then
  log "benchmark on real Cinder (report $WORK/bench.md)"
  go test -count=1 -run '^$' -bench . -benchtime ${E2E_BENCH_N:-5}x -timeout 30m ./tests/e2e/openstack/bench/ 2>&1 |
    tee "$WORK/bench.log" | grep -E '^(Benchmark|ok|FAIL|---)'
  [[ ${PIPESTATUS[0]} == 0 ]] || rc=1
fi
# The k8s e2e's flows (tests/e2e/README.md, "Against the real rig") on this
# cloud, while the rig and the node servers are up: real kube-apiserver,
# kcm and sidecars with the manifests' args; skips itself when the k8s rig
# binaries are not cached (never builds them here). E2E_K8S_OPENSTACK=0
# leaves it out; with E2E_RUN set it runs only with E2E_K8S_OPENSTACK=1.
if [[ ${E2E_K8S_OPENSTACK:-} == 1 || (-z ${E2E_RUN:-} && ${E2E_K8S_OPENSTACK:-1} != 0) ]]; then
  log "k8s flows on the real cloud (log $WORK/k8s.log, steps $WORK/k8s-times.txt)"
  rm -f "$WORK/k8s-times.txt"
  make -s build >"$WORK/k8s.log" 2>&1 &&
    E2E_K8S_CLOUD=openstack E2E_K8S_NO_BUILD=1 E2E_K8S_TIMES=$WORK/k8s-times.txt "$ROOT/hack/e2e-k8s.sh" >>"$WORK/k8s.log" 2>&1
  k8src=$?
  grep -E '^(e2e-k8s: SKIP|--- |ok|FAIL)' "$WORK/k8s.log" || true
  [[ -f $WORK/k8s-times.txt ]] && cat "$WORK/k8s-times.txt"
  [[ $k8src == 0 ]] || { log "k8s flows failed (rc=$k8src), see $WORK/k8s.log"; rc=1; }
fi
set -e
# Ginkgo colours its summary; the counts are read without the escapes.
sed 's/\x1b\[[0-9;]*m//g' "$WORK/go-test.log" >"$WORK/go-test.plain.log"
"$ROOT/hack/sanity-summary.sh" "$WORK/go-test.plain.log" | grep -v '^sanity: ok' || true
[[ -f $WORK/diff.md ]] && echo "differential, Cinder and Nova: $(tail -1 "$WORK/diff.md")"
[[ -f $WORK/diff-keystone.md ]] && echo "differential, Keystone: $(tail -1 "$WORK/diff-keystone.md")"
if [[ -f $WORK/diff-manila.md ]]; then
  echo "differential, Manila: $(tail -1 "$WORK/diff-manila.md")"
elif [[ $MANILA_UP != 1 ]]; then
  echo "differential, Manila: SKIPPED ($manila_reason)"
fi
[[ -z $E2E_LIBVIRT_SKIP ]] || echo "$E2E_LIBVIRT_SKIP"
log "go test rc=$rc; full log $WORK/go-test.log"
exit $rc
