#!/usr/bin/env bash
# Runs the standalone csi-sanity binary (bin/csi-sanity, installed by
# `make sanity-binary` at a pinned version) against the built plugin and
# emulator running as processes, the way a packager would test a release:
#   bin/openstack-emulator  fake Keystone/Cinder/Nova/metadata, hot-plugging
#                           loop devices for the local server
#   bin/cinder-csi-plugin   controller + node on a unix socket
# It prints the pass/skip counts, checks that the cloud is empty afterwards,
# and leaves no process, mount, loop device or temp directory behind.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
for b in openstack-emulator cinder-csi-plugin csi-sanity; do
  [ -x "$BIN/$b" ] || { echo "sanity-binary: $BIN/$b missing (run make sanity-binary)" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
  echo "sanity-binary: skipped: needs root (the node service formats and mounts loop devices)"
  exit 0
fi

# Same settings as the in-process runs (tests/sanity/harness).
NODE_ID=5a1c0e3b-7d2f-4e6a-9b8c-1d2e3f4a5b6c
ATTACH_LIMIT=8

work=$(mktemp -d /tmp/cinder-csi-sanity-binary.XXXXXX)
emu_pid=""
plugin_pid=""

cleanup() {
  local rc=$?
  set +e
  if [ -n "$plugin_pid" ]; then kill -TERM "$plugin_pid" 2>/dev/null; wait "$plugin_pid" 2>/dev/null; fi
  # Mounts first (the suite unmounts its own; this catches a failed run),
  # then the emulator, which detaches its loop devices on SIGTERM.
  awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    echo "sanity-binary: unmounting leftover $m" >&2
    umount -l "$m"
  done
  if [ -n "$emu_pid" ]; then kill -TERM "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null; fi
  if losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null | grep -F "$work/" >/dev/null; then
    echo "sanity-binary: loop devices left behind:" >&2
    losetup --list --noheadings --output NAME,BACK-FILE | grep -F "$work/" >&2
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    for f in emulator.log plugin.log; do
      [ -f "$work/$f" ] && { echo "--- last lines of $f" >&2; tail -n 40 "$work/$f" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/dev" "$work/sys"

"$BIN/openstack-emulator" --dev-root "$work/dev" --sys-root "$work/sys" \
  --servers "id=$NODE_ID,name=sanity-node,az=nova,local" --max-devices $((ATTACH_LIMIT + 1)) \
  --url-file "$work/url" --cloud-conf "$work/cloud.conf" --data-dir "$work/data" >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 300); do
  [ -s "$work/url" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { echo "sanity-binary: the emulator exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/url" ] || { echo "sanity-binary: the emulator did not start" >&2; exit 1; }
url=$(cat "$work/url")
# The VolumeAttributesClass's type for the ModifyVolume specs, on the ssd
# type's backend so the retype needs no migration (the admin API over
# bash's /dev/tcp, as the leak check below).
type_body='{"name":"ssd-gold","extra_specs":{"volume_backend_name":"ssd"}}'
hostport=${url#http://}
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
printf 'POST /admin/volume-types HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
  "$hostport" "${#type_body}" "$type_body" >&3
grep -q '^HTTP/1.[01] 204' <&3 || { echo "sanity-binary: the emulator did not add the ssd-gold type" >&2; exit 1; }
exec 3<&-

cat >>"$work/cloud.conf" <<EOF

[BlockStorage]
node-volume-attach-limit = $ATTACH_LIMIT

[Metadata]
search-order = metadataService
EOF

"$BIN/cinder-csi-plugin" --endpoint "unix://$work/csi.sock" --cloud-config "$work/cloud.conf" \
  --cluster sanity --dev-root "$work/dev" --sys-root "$work/sys" --kubelet-root-dir "$work" \
  --metadata-url "$url/openstack/latest/meta_data.json" >"$work/plugin.log" 2>&1 &
plugin_pid=$!
for _ in $(seq 300); do
  [ -S "$work/csi.sock" ] && break
  kill -0 "$plugin_pid" 2>/dev/null || { echo "sanity-binary: the plugin exited" >&2; exit 1; }
  sleep 0.1
done
[ -S "$work/csi.sock" ] || { echo "sanity-binary: the plugin did not start" >&2; exit 1; }

# Every secret carries the `cloud` key; empty selects the [Global] cloud.
: >"$work/secrets.yaml"
for s in CreateVolumeSecret DeleteVolumeSecret ControllerPublishVolumeSecret ControllerUnpublishVolumeSecret \
  ControllerValidateVolumeCapabilitiesSecret NodeStageVolumeSecret NodePublishVolumeSecret CreateSnapshotSecret \
  DeleteSnapshotSecret ControllerExpandVolumeSecret ControllerModifyVolumeSecret ListSnapshotsSecret GetSnapshotSecret; do
  printf '%s:\n  cloud: ""\n' "$s" >>"$work/secrets.yaml"
done
printf 'type: ssd\n' >"$work/volume-params.yaml"
printf 'type: ssd-gold\n' >"$work/mutable-params.yaml"
printf 'type: snapshot\nforce-create: "false"\n' >"$work/snapshot-params.yaml"

set +e
"$BIN/csi-sanity" -ginkgo.no-color \
  -csi.endpoint "unix://$work/csi.sock" \
  -csi.mountdir "$work/target" -csi.stagingdir "$work/staging" \
  -csi.secrets "$work/secrets.yaml" \
  -csi.testvolumesize $((1 << 30)) -csi.testvolumeexpandsize $((2 << 30)) \
  -csi.testvolumeparameters "$work/volume-params.yaml" \
  -csi.testvolumemutableparameters "$work/mutable-params.yaml" \
  -csi.testsnapshotparameters "$work/snapshot-params.yaml" \
  -csi.testnodevolumeattachlimit >"$work/sanity.log" 2>&1
sanity_rc=$?
set -e
grep -E '^\s*\[FAIL\]' "$work/sanity.log" || true
# The counts also go to $BIN/sanity-binary.summary for the CI recap.
{
  grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$work/sanity.log" || true
  grep -E '^(SUCCESS|FAIL)! .*Passed' "$work/sanity.log" || true
} | sed 's/^/sanity-binary: /' | tee "$BIN/sanity-binary.summary"
if [ "$sanity_rc" != 0 ]; then
  tail -n 60 "$work/sanity.log" >&2
  echo "sanity-binary: FAILED"
  exit 1
fi

# Leak check: ask the emulator's admin API (plain HTTP over bash's /dev/tcp,
# so no curl is needed) for what it still holds.
hostport=${url#http://}
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
printf 'GET /admin/state HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
state=$(cat <&3)
exec 3<&-
leaks=0
for kind in volumes snapshots backups attachments groups group_snapshots; do
  if ! grep -Eq "\"$kind\":(null|\[\])" <<<"$state"; then
    echo "sanity-binary: the emulator still holds $kind: $(grep -Eo "\"$kind\":\[[^]]*\]" <<<"$state" | head -c 600)" >&2
    leaks=1
  fi
done
[ "$leaks" = 0 ] || { echo "sanity-binary: FAILED (leaks)"; exit 1; }
echo "sanity-binary: ok (cloud empty afterwards)"
