#!/usr/bin/env bash
# e2e-k8s.sh - `make e2e-k8s`: cinder-csi under a real kube-apiserver,
# kube-controller-manager and the CSI sidecars (tests/e2e/README.md, "## k8s").
#
#  1. builds (or reuses) etcd, kube-apiserver, kube-controller-manager and
#     the sidecars with the k8s rig's build.sh (K8S_RIG_DIR, else
#     ../shared/tools/k8s-rig next to the repository, else
#     /work/shared/tools/k8s-rig); stamps make a warm run take about a second;
#  2. runs tests/e2e/k8s (E2E_K8S=1) against bin/cinder-csi-plugin and
#     bin/openstack-emulator (`make build` runs first);
#  3. whatever happens, stops every process the test recorded under its
#     state dir (by pid, process group; never by name), unmounts and
#     detaches what is left there.
#
# Without the rig and without cached binaries it skips with a message and
# exits 0. E2E_K8S_NO_BUILD=1 never runs build.sh (a cold build takes
# 24-53 min on 2 cores): it skips when the cache lacks a binary. Knobs: K8S_RIG_CACHE (default ~/.cache/k8s-rig), E2E_K8S_KEEP=1
# (keep the state dir and its logs), E2E_K8S_TIMES=FILE (write the step
# table there), E2E_K8S_RUN (go test -run pattern), E2E_K8S_PROFILE=realistic
# (the emulator's real-world latencies).
# E2E_K8S_CLOUD=openstack: the real openstack-rig instead of the emulator;
# hack/e2e-openstack.sh runs it that way with the project, node servers and
# cloud.conf it made (tests/e2e/README.md, "Against the real rig").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${K8S_RIG_CACHE:-$HOME/.cache/k8s-rig}
NEEDED="etcd kube-apiserver kube-controller-manager csi-provisioner csi-attacher csi-snapshotter snapshot-controller csi-resizer"

rig=""
for d in "${K8S_RIG_DIR:-}" "$ROOT/../shared/tools/k8s-rig" /work/shared/tools/k8s-rig; do
	if [[ -n $d && -x $d/build.sh ]]; then rig=$(cd "$d" && pwd); break; fi
done

have_all() {
	local b
	for b in $NEEDED; do [[ -x $CACHE/bin/$b ]] || return 1; done
	compgen -G "$CACHE/crd/*.yaml" >/dev/null
}

if [[ $(id -u) != 0 ]]; then
	echo "e2e-k8s: SKIP - needs root (the emulator hot-plugs loop devices, the node plugin mounts them)"
	exit 0
fi
if [[ ${E2E_K8S_NO_BUILD:-0} == 1 ]]; then
	have_all || { echo "e2e-k8s: SKIP - E2E_K8S_NO_BUILD=1 and the k8s rig cache $CACHE/bin is incomplete (run tools/k8s-rig/build.sh)"; exit 0; }
elif [[ -n $rig ]]; then
	# One build at a time: wait for a build.sh already running (e.g. started
	# by hand), then take a lock for ours. Warm, build.sh only checks stamps.
	while pgrep -f "k8s-rig/build.sh" >/dev/null; do
		echo "e2e-k8s: waiting for a running k8s-rig build.sh to finish ..."
		sleep 20
	done
	mkdir -p "$CACHE"
	t0=$(date +%s)
	(
		flock 9
		ONLY="kube etcd provisioner attacher snapshotter resizer" K8S_RIG_CACHE=$CACHE "$rig/build.sh"
	) 9>"$CACHE/.e2e-k8s-build.lock" >"${TMPDIR:-/tmp}/e2e-k8s-rig-build.log" 2>&1 ||
		{ echo "e2e-k8s: $rig/build.sh failed; see ${TMPDIR:-/tmp}/e2e-k8s-rig-build.log" >&2; exit 1; }
	echo "e2e-k8s: k8s rig binaries ready in $CACHE/bin ($(($(date +%s) - t0)) s)"
elif ! have_all; then
	echo "e2e-k8s: SKIP - no k8s rig (tools/k8s-rig/build.sh) found and no binaries in $CACHE/bin; set K8S_RIG_DIR"
	exit 0
fi
have_all || { echo "e2e-k8s: rig binaries incomplete in $CACHE/bin (need: $NEEDED)" >&2; exit 1; }

STATE=$(mktemp -d "${TMPDIR:-/tmp}/cinder-csi-e2e-k8s-XXXXXX")
cleanup() {
	local f pid n
	[[ -d $STATE/pids ]] || return 0
	for f in "$STATE"/pids/*.pid; do
		[[ -e $f ]] || continue
		pid=$(cat "$f")
		# only a live process that still leads its own group (the harness
		# starts each with Setpgid): pid reuse cannot hit a stranger
		if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
			[[ $(ps -o pgid= -p "$pid" | tr -d ' ') == "$pid" ]]; then
			n=$(basename "$f" .pid)
			echo "e2e-k8s: stopping leftover $n (pid $pid)"
			kill -TERM -- "-$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
	grep -o " $STATE/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
	for f in /sys/block/loop*/loop/backing_file; do
		[[ -e $f ]] || continue
		if [[ $(cat "$f") == "$STATE"/* ]]; then losetup -d "/dev/$(basename "$(dirname "$(dirname "$f")")")" || true; fi
	done
}
trap cleanup EXIT

cd "$ROOT"
E2E_K8S=1 E2E_K8S_DIR=$STATE K8S_RIG_CACHE=$CACHE E2E_K8S_BIN=$ROOT/bin \
	go test -count=1 -timeout 30m -v -run "${E2E_K8S_RUN:-TestKubernetes}" ./tests/e2e/k8s/
