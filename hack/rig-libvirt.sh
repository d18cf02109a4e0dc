#!/usr/bin/env bash
# rig-libvirt.sh up|down|status: a second nova-compute with the libvirt driver
# (virt_type=qemu, TCG: /dev/kvm is not usable here) beside the openstack-rig's
# fake compute, so that a server boots as a real QEMU guest and Nova + libvirt
# attach Cinder RBD volumes to it themselves (qemu's rbd block driver,
# cephx key in a libvirt secret). Idempotent; the rig must already be up.
#
# What it sets up (nothing under the rig's scripts is changed):
#   packages     libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
#                qemu-block-extra (qemu's rbd driver) genisoimage (config drive);
#                none of them conflicts with the rig's nova-compute-ironic
#   libvirtd     run by hand (no systemd): root, no cgroups, no namespaces, no
#                security driver (/etc/libvirt/qemu.conf), pid in $STATE/run
#   secret       libvirt ceph secret with client.cinder's key, uuid = the Ceph
#                fsid: Cinder's RBD driver sends that as secret_uuid
#   nova-compute host=rig-libvirt, second --config-file after the rig's
#                nova.conf; all its MEMORY_MB is reserved and it carries trait
#                CUSTOM_RIG_LIBVIRT, so only flavor rig.libvirt
#                (resources:MEMORY_MB=0, trait required) lands there and no
#                other test's server leaves the rig's fake compute
#   guest image  Glance rig-libvirt-kernel (aki), rig-libvirt-initramfs (ari:
#                vm-rig's initramfs + an overlay with the IDE CD-ROM and isofs
#                modules for Nova's config drive) and rig-libvirt (1 MiB raw,
#                kernel_id/ramdisk_id); flavor rig.libvirt (512 MiB, 1 vCPU)
#
# Env: RIG_STATE (/var/lib/openstack-rig), RIG_LIBVIRT_STATE (/var/lib/rig-libvirt),
# VM_RIG_DIR (/work/shared/tools/vm-rig), VM_RIG_STATE (/var/lib/vm-rig).
# Prints "rig-libvirt: UP ..." on success; exit 3 (with "rig-libvirt: CANNOT ...")
# when a prerequisite is missing.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
RIG_STATE=${RIG_STATE:-/var/lib/openstack-rig}
S=${RIG_LIBVIRT_STATE:-/var/lib/rig-libvirt}
VM_RIG_DIR=${VM_RIG_DIR:-/work/shared/tools/vm-rig}
VM_BUILD=${VM_RIG_STATE:-/var/lib/vm-rig}/build
HOST=rig-libvirt
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-block-extra genisoimage)
RIG_CONF=$RIG_STATE/etc/nova/nova.conf
CONF=$S/nova-libvirt.conf
T0=$SECONDS

log() { echo "[rig-libvirt $(date +%T) +$((SECONDS - T0))s] $*" >&2; }
cannot() { echo "rig-libvirt: CANNOT: $*"; exit 3; }
osc() { (set +u; . "$RIG_STATE/openrc"; openstack "$@"); }
alive() { [[ -s $S/run/$1.pid ]] && kill -0 "$(cat "$S/run/$1.pid")" 2>/dev/null; }

# stop NAME: SIGTERM the process group we started (setsid: pgid == pid), then SIGKILL.
stop() {
  local pid i
  [[ -s $S/run/$1.pid ]] || return 0
  pid=$(cat "$S/run/$1.pid")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$S/run/$1.pid" "$S/run/$1.sum"
}

# start NAME SUM CMD...: start CMD in its own session unless it runs with the same SUM.
start() {
  local name=$1 sum=$2; shift 2
  if alive "$name" && [[ $(cat "$S/run/$name.sum" 2>/dev/null) == "$sum" ]]; then
    log "$name already running (pid $(cat "$S/run/$name.pid"))"
    return 0
  fi
  stop "$name"
  log "starting $name"
  # exec: the recorded pid is the daemon's (no shell in between holding our stdout)
  # 9>&-: the daemon must not inherit (and so hold) the lock of lock().
  (cd / && exec setsid "$@") >>"$S/log/$name.out" 2>&1 </dev/null 9>&- &
  echo $! >"$S/run/$name.pid"
  echo "$sum" >"$S/run/$name.sum"
}

# until_ok DESC SECONDS CMD...: poll CMD every second.
until_ok() {
  local desc=$1 limit=$2 t=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - t < limit)) || { log "timeout waiting for $desc"; return 1; }
    sleep 1
  done
  log "$desc after $((SECONDS - t))s"
}

prerequisites() {
  [[ $(id -u) == 0 ]] || cannot "needs root"
  [[ -f $RIG_CONF && -f $RIG_STATE/openrc ]] || cannot "the openstack-rig is not up ($RIG_CONF missing)"
  [[ -r /etc/ceph/ceph.client.cinder.keyring ]] || cannot "no /etc/ceph/ceph.client.cinder.keyring (the rig's cinder key)"
  if [[ ! -s $VM_BUILD/initramfs.img ]]; then
    [[ -x $VM_RIG_DIR/build.sh ]] || cannot "vm-rig not built and $VM_RIG_DIR/build.sh missing"
    log "building vm-rig ($VM_RIG_DIR/build.sh)"
    "$VM_RIG_DIR/build.sh" >"$S/log/vm-rig-build.log" 2>&1 || cannot "vm-rig build.sh failed (see $S/log/vm-rig-build.log)"
  fi
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$S/log/apt.log" 2>&1 ||
      cannot "apt-get install ${missing[*]} failed (see $S/log/apt.log)"
  fi
  # Debian's libvirt-daemon-system would create these (it pulls systemd units we cannot use);
  # the QEMU driver refuses to start without its default user and group, even with user=root.
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g kvm libvirt-qemu
}

libvirt_up() {
  local marker="# written by cinder-csi hack/rig-libvirt.sh"
  if [[ -e /etc/libvirt/qemu.conf ]] && ! grep -q "^$marker" /etc/libvirt/qemu.conf; then
    cannot "/etc/libvirt/qemu.conf exists and is not ours"
  fi
  mkdir -p /etc/libvirt
  # root, and none of the host features this machine lacks (cgroup v1 controllers
  # without systemd, mount namespaces, AppArmor); console logs to files, no virtlogd.
  cat >/etc/libvirt/qemu.conf <<EOF
$marker (rig libvirt compute)
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
remember_owner = 0
EOF
  cat >"$S/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 0
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "2:file:$S/log/libvirtd.log"
EOF
  start libvirtd "$(cat /etc/libvirt/qemu.conf "$S/libvirtd.conf" | md5sum | cut -c1-32)" \
    /usr/sbin/libvirtd -f "$S/libvirtd.conf"
  # The first connection probes QEMU's capabilities (~8 s under TCG).
  until_ok "libvirtd answers" 90 virsh -c qemu:///system version || cannot "libvirtd does not answer (see $S/log/libvirtd.log)"
}

secret_up() {
  local fsid key
  fsid=$(awk -F' *= *' '$1 == "fsid" {print $2; exit}' "$RIG_STATE/etc/ceph/ceph.conf")
  [[ -n $fsid ]] || cannot "no fsid in $RIG_STATE/etc/ceph/ceph.conf"
  echo "$fsid" >"$S/secret.uuid"
  cat >"$S/secret.xml" <<EOF
<secret ephemeral='no' private='yes'><uuid>$fsid</uuid><usage type='ceph'><name>client.cinder rig-libvirt</name></usage></secret>
EOF
  virsh -q secret-define "$S/secret.xml" >/dev/null
  # The key goes through a 0600 file, never a command line.
  key=$(mktemp "$S/key.XXXXXX")
  awk '$1 == "key" {print $3}' /etc/ceph/ceph.client.cinder.keyring >"$key"
  virsh -q secret-set-value "$fsid" --file "$key" >/dev/null
  rm -f "$key"
}

compute_conf() {
  local mem
  # libvirt's total is what nova reports as MEMORY_MB; reserving all of it
  # (and a tiny allocation ratio) keeps every flavor that asks for memory
  # off this host.
  mem=$(/usr/bin/python3 -c "import libvirt; print(libvirt.open('qemu:///system').getInfo()[1])")
  mkdir -p "$S/provider-config" "$S/instances" "$S/state" "$S/lock"
  cat >"$S/provider-config/rig-libvirt.yaml" <<'EOF'
meta:
  schema_version: '1.0'
providers:
  - identification:
      uuid: '$COMPUTE_NODE'
    traits:
      additional:
        - 'CUSTOM_RIG_LIBVIRT'
EOF
  cat >"$CONF" <<EOF
# read after the rig's nova.conf: only what differs for the libvirt compute
[DEFAULT]
host = $HOST
compute_driver = libvirt.LibvirtDriver
state_path = $S/state
instances_path = $S/instances
force_config_drive = true
config_drive_format = iso9660
reserved_host_memory_mb = $mem
# Should the host's memory grow while nova-compute runs (it went from 20442
# to 24105 MB here once), this keeps MEMORY_MB's capacity under 1 MB.
ram_allocation_ratio = 0.0001
[compute]
provider_config_location = $S/provider-config
[oslo_concurrency]
lock_path = $S/lock
[libvirt]
virt_type = qemu
connection_uri = qemu:///system
cpu_mode = none
hw_machine_type = x86_64=pc
rbd_user = cinder
rbd_secret_uuid = $(cat "$S/secret.uuid")
inject_partition = -2
EOF
}

compute_fresh() {
  local since=$1 updated
  updated=$(osc compute service list --host "$HOST" --service nova-compute -f value -c State -c "Updated At" | awk '$1 == "up" {print $2}')
  [[ -n $updated ]] && (($(date -d "${updated}Z" +%s) >= since - 1))
}

compute_up() {
  local sum since
  sum=$(cat "$RIG_CONF" "$CONF" | md5sum | cut -c1-32)
  start nova-compute "$sum" nova-compute --config-file "$RIG_CONF" --config-file "$CONF" --log-file "$S/log/nova-compute.log"
  since=$(stat -c %Y "$S/run/nova-compute.pid")
  until_ok "nova-compute $HOST up (fresh heartbeat)" 180 compute_fresh "$since" || cannot "nova-compute on $HOST did not report (see $S/log/nova-compute.log)"
  # discover_hosts_in_cells_interval = -1 on the rig: map the new host once
  # per rig database (up.sh makes .synced when it creates the databases).
  local db
  db=$(stat -c %Y "$RIG_STATE/nova/.synced" 2>/dev/null || echo none)
  if [[ $(cat "$S/state/.discovered" 2>/dev/null) != "$db" ]]; then
    nova-manage --config-file "$RIG_CONF" cell_v2 discover_hosts >"$S/log/discover.log" 2>&1
    echo "$db" >"$S/state/.discovered"
  fi
  # down disables the service; an up after it enables it again.
  if [[ -e $S/state/.disabled ]]; then
    osc compute service set --enable "$HOST" nova-compute
    rm -f "$S/state/.disabled"
  fi
}

# image NAME SALT FILE ARGS...: (re)upload FILE as a public image unless one with the same
# checksum of FILE and SALT (e.g. the ids its properties name) is there.
image() {
  local name=$1 sum old
  sum=$( (md5sum <"$3"; echo "$2") | md5sum | cut -c1-32)
  old=$(osc image show "$name" -f json -c properties 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("rig_libvirt_sum",""))' 2>/dev/null || true)
  if [[ -n $old && $old == "$sum" ]]; then osc image show "$name" -f value -c id; return; fi
  osc image delete "$name" >/dev/null 2>&1 || true
  osc image create --public "${@:4}" --property rig_libvirt_sum="$sum" --file "$3" -f value -c id "$name"
}

guest_image() {
  local kv o m kdir kid rid stamp
  kv=$(cat "$VM_BUILD/kernel.version")
  kdir=$VM_BUILD/kernel/$kv/root/lib/modules/$kv/kernel
  o=$S/overlay
  rm -rf "$o"
  mkdir -p "$o/usr/local/sbin" "$o/etc"
  # Nova's config drive is an iso9660 CD-ROM on the IDE bus of machine type pc.
  for m in drivers/scsi/scsi_common.ko drivers/scsi/scsi_mod.ko drivers/ata/libata.ko drivers/ata/ata_piix.ko \
    drivers/cdrom/cdrom.ko drivers/scsi/sr_mod.ko fs/isofs/isofs.ko; do
    mkdir -p "$o/usr/lib/modules/$kv/kernel/$(dirname "$m")"
    cp "$kdir/$m" "$o/usr/lib/modules/$kv/kernel/$m"
  done
  cat >"$o/usr/local/sbin/rig-libvirt-sysinit" <<'EOF'
#!/bin/sh
for m in ata_piix sr_mod isofs; do modprobe $m || echo "rig-libvirt: modprobe $m failed" > /dev/console; done
echo "RIG_LIBVIRT_SYSINIT_DONE" > /dev/console
EOF
  chmod 755 "$o/usr/local/sbin/rig-libvirt-sysinit"
  cat >"$o/etc/inittab" <<'EOF'
::sysinit:/usr/local/sbin/rig-libvirt-sysinit
::respawn:/usr/local/sbin/vmrig-agent
::respawn:-/bin/sh
::shutdown:/bin/sync
EOF
  # The kernel unpacks concatenated cpio archives in order: the overlay's files win.
  # Fixed mtimes keep the archive's checksum (and so the Glance image) unchanged across runs.
  find "$o" -exec touch -h -d @0 {} +
  (cd "$o" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) >"$S/overlay.cpio"
  cat "$VM_BUILD/initramfs.img" "$S/overlay.cpio" >"$S/initramfs.img"
  [[ -s $S/root.raw ]] || truncate -s 1M "$S/root.raw"
  # Warm path: same files as the last upload and the image still in Glance (one CLI call).
  stamp=$(cat "$VM_BUILD/kernel/$kv/root/boot/vmlinuz-$kv" "$S/initramfs.img" "$S/root.raw" | md5sum | cut -c1-32)
  if [[ $(cat "$S/images.stamp" 2>/dev/null) == "$stamp" ]] && osc image show rig-libvirt -f value -c id >/dev/null 2>&1 &&
    osc flavor show rig.libvirt -f value -c id >/dev/null 2>&1; then
    log "guest images unchanged"
    return
  fi
  kid=$(image rig-libvirt-kernel "" "$VM_BUILD/kernel/$kv/root/boot/vmlinuz-$kv" --disk-format aki --container-format aki)
  rid=$(image rig-libvirt-initramfs "" "$S/initramfs.img" --disk-format ari --container-format ari)
  # raw, not ami: Zed's format inspector refuses an "ami" that is not a disk image.
  image rig-libvirt "$kid $rid" "$S/root.raw" --disk-format raw --container-format bare \
    --property kernel_id="$kid" --property ramdisk_id="$rid" --property hw_qemu_guest_agent=yes \
    --property os_command_line="console=ttyS0 vmrig.name=rig-libvirt" >/dev/null
  osc flavor show rig.libvirt >/dev/null 2>&1 ||
    osc flavor create --public --ram 512 --vcpus 1 --disk 1 --property resources:MEMORY_MB=0 \
      --property trait:CUSTOM_RIG_LIBVIRT=required rig.libvirt >/dev/null
  echo "$stamp" >"$S/images.stamp"
}

up() {
  mkdir -p "$S/run" "$S/log"
  prerequisites
  libvirt_up
  secret_up
  compute_conf
  compute_up
  guest_image
  echo "rig-libvirt: UP host=$HOST flavor=rig.libvirt image=rig-libvirt libvirtd=$(cat "$S/run/libvirtd.pid") nova-compute=$(cat "$S/run/nova-compute.pid") ($((SECONDS - T0))s)"
}

# down: delete the servers left on this host, stop nova-compute and libvirtd.
# Images, flavor and service record stay in the rig (down.sh --wipe drops them).
down() {
  if [[ -f $RIG_STATE/openrc ]] && alive nova-compute; then
    for id in $(osc server list --all-projects --host "$HOST" -f value -c ID 2>/dev/null); do
      log "deleting server $id left on $HOST"
      osc server delete --wait "$id" || true
    done
    osc compute service set --disable --disable-reason "rig-libvirt.sh down" "$HOST" nova-compute >/dev/null 2>&1 &&
      touch "$S/state/.disabled"
  fi
  stop nova-compute
  if alive libvirtd; then
    for d in $(virsh -c qemu:///system list --name 2>/dev/null); do
      log "destroying domain $d"
      virsh -c qemu:///system destroy "$d" >/dev/null || true
    done
  fi
  stop libvirtd
  echo "rig-libvirt: DOWN ($((SECONDS - T0))s)"
}

status() {
  for n in libvirtd nova-compute; do
    if alive "$n"; then echo "$n pid $(cat "$S/run/$n.pid")"; else echo "$n not running"; fi
  done
  alive libvirtd && virsh -c qemu:///system list --all
}

# One up or down at a time: several suites (libvirtnode, peerpod) bring the
# compute up, and two ups at once would restart each other's daemons.
lock() { mkdir -p "$S/run"; exec 9>"$S/run/rig-libvirt.lock"; flock -w 900 9 || cannot "another rig-libvirt.sh holds $S/run/rig-libvirt.lock"; }
case ${1:-} in
  up) lock; up ;;
  down) lock; down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
